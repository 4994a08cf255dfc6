import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// parley-crash-harness: proves that a receiving device killed with SIGKILL at random moments loses and
/// duplicates no message, and that its store opens and verifies after every crash.
///
///     parley-crash-harness run [--cycles 200] [--messages 2000] [--dir DIR] [--seed S] [--keep]
///         the driver (what `make test` runs): sets up Alice and Bob, starts the sender, kills and
///         restarts the receiver, then checks Bob's messages against what was sent; exit status 0 only
///         if nothing was lost or duplicated and every open verified
///     parley-crash-harness send --dir DIR --messages N         (started by the driver)
///     parley-crash-harness receive --dir DIR --progress FILE   (started by the driver)
@main
struct Harness {
    static func usage() -> Never {
        FileHandle.standardError.write(Data("""
            usage: parley-crash-harness run [--cycles N] [--messages N] [--dir DIR] [--seed S] [--keep]
                   parley-crash-harness send --dir DIR --messages N
                   parley-crash-harness receive --dir DIR --progress FILE

            """.utf8))
        exit(64)
    }

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard let command = arguments.first else { usage() }
        arguments.removeFirst()
        var values: [String: String] = [:]
        var keep = false
        while let name = arguments.first {
            arguments.removeFirst()
            guard name.hasPrefix("--") else { usage() }
            if name == "--keep" { keep = true; continue }
            guard let value = arguments.first else { usage() }
            arguments.removeFirst()
            values[name] = value
        }
        func positive(_ name: String) -> Int? {
            guard let text = values[name] else { return nil }
            guard let value = Int(text), value > 0 else { usage() }
            return value
        }

        let status: Int32
        switch command {
        case "run":
            var options = DriverOptions()
            options.cycles = positive("--cycles") ?? options.cycles
            options.messages = positive("--messages") ?? options.messages
            options.dir = values["--dir"]
            if let seed = values["--seed"] {
                guard let value = UInt64(seed) else { usage() }
                options.seed = value
            }
            options.keep = keep
            guard options.messages > options.cycles else {
                FileHandle.standardError.write(Data("--messages must exceed --cycles, so that messages stream in during every cycle\n".utf8))
                exit(64)
            }
            status = await Driver.run(options)
        case "send":
            guard let dir = values["--dir"], let total = positive("--messages") else { usage() }
            status = await Sender.run(Layout(dir: dir), total: total)
        case "receive":
            guard let dir = values["--dir"], let progress = values["--progress"] else { usage() }
            status = await Receiver.run(Layout(dir: dir), progressPath: progress)
        default:
            usage()
        }
        exit(status)
    }
}
