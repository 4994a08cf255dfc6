import CFuzzerDriver
import Glibc

/// `parley-fuzz TARGET [libFuzzer options] [corpus directories]`: runs libFuzzer on one decoder family.
/// One executable for all targets, so the sanitized build links once (see the Makefile's fuzz section).
/// `parley-fuzz list` prints the target names; `parley-fuzz seeds DIR` writes the seed corpus.
@main struct Main {
    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "seeds" {
            do { try Seeds.write(into: arguments[2]) } catch { print("parley-fuzz seeds: \(error)"); exit(1) }
            exit(0)
        }
        guard arguments.count >= 2, let target = FuzzTarget.all[arguments[1]] else {
            let names = FuzzTarget.all.keys.sorted().joined(separator: "\n")
            if arguments.count >= 2, arguments[1] == "list" { print(names); exit(0) }
            print("usage: parley-fuzz TARGET [libFuzzer options] [corpus…]\ntargets:\n\(names)")
            exit(2)
        }
        FuzzTarget.selected = target
        // The MLS fixture reads a vector file of more than a megabyte: before libFuzzer's -malloc_limit_mb applies.
        if arguments[1].hasPrefix("mls-") { _ = MLSFuzzFixture.shared }
        // libFuzzer sees the program name and everything after the target name.
        var argc = CInt(arguments.count - 1)
        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: arguments.count)
        argv[0] = CommandLine.unsafeArgv[0]
        for index in 2..<arguments.count { argv[index - 1] = CommandLine.unsafeArgv[index] }
        argv[arguments.count - 1] = nil
        var argvPointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
        exit(LLVMFuzzerRunDriver(&argc, &argvPointer, fuzzOneInput))
    }
}

/// libFuzzer's callback. libFuzzer's own `main` (which the runtime library also carries) refers to this
/// name; SwiftPM points `main` at the `@main` above, so that one runs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTarget.selected?(bytes)
    return 0
}

/// A failed property: reported like a crash (libFuzzer saves the input).
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("fuzz property failed: \(message())", file: file, line: line) }
}
