import Foundation
import ParleyHeadless
import Testing

/// man/parley-jsonrpc.5 documents exactly what the daemon implements: a method added to the table
/// without documentation, or documented and never implemented, fails here.
@Suite("Headless: the man page matches the implementation")
struct ManPageTests {
    static let page: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return (try? String(contentsOfFile: url.path + "/man/parley-jsonrpc.5", encoding: .utf8)) ?? ""
    }()

    /// The `.SS` headings of the section `.SH name`.
    static func headings(in section: String) -> [String] {
        var inside = false
        var names: [String] = []
        for line in page.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(".SH ") { inside = line == ".SH \(section)" }
            else if inside, line.hasPrefix(".SS ") { names.append(String(line.dropFirst(4))) }
        }
        return names
    }

    @Test("every method in the table is documented, and nothing else")
    func methods() {
        #expect(!Self.page.isEmpty, "man/parley-jsonrpc.5 is missing")
        let documented = Self.headings(in: "METHODS")
        #expect(documented.count == Set(documented).count, "a method is documented twice")
        #expect(Set(documented) == Set(HeadlessMethods.table.map(\.name)))
    }

    @Test("every notification is documented, and nothing else")
    func notifications() {
        #expect(Set(Self.headings(in: "NOTIFICATIONS")) == Set(NotificationShapes.all))
    }

    @Test("every error code is documented, and nothing else")
    func errors() {
        var codes: [Int64] = []
        var inside = false, afterTP = false
        for line in Self.page.split(separator: "\n") {
            if line.hasPrefix(".SH ") { inside = line == ".SH ERRORS" }
            guard inside else { continue }
            if afterTP, line.hasPrefix(".B "), let code = Int64(line.dropFirst(3).replacingOccurrences(of: "\\-", with: "-")) { codes.append(code) }
            afterTP = line == ".TP"
        }
        #expect(Set(codes) == Set(RPCErrorCode.allCases.map(\.rawValue)))
    }
}
