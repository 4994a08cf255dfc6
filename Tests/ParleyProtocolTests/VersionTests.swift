import Foundation
import ParleyProtocol
import Testing

/// The version is defined once (`ParleyVersion`); the man pages' headers name the same one.
@Test("every man page's header names ParleyVersion.number")
func manPagesNameTheVersion() throws {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    let man = url.appendingPathComponent("man").path
    let pages = try FileManager.default.contentsOfDirectory(atPath: man).filter { $0.range(of: #"\.[1-8]$"#, options: .regularExpression) != nil }
    #expect(!pages.isEmpty)
    for page in pages {
        let header = try String(contentsOfFile: man + "/" + page, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix(".TH ") }
        #expect(header?.contains("\"Parley \(ParleyVersion.number)\"") == true, "\(page): \(header ?? "no .TH line")")
    }
    #expect(ParleyVersion.string.hasPrefix(ParleyVersion.number + " "))
}
