import Foundation
import ParleyCrypto
@testable import ParleyProtocol
import Testing

/// Content type 0x0B, device ready (PROTOCOL.md §12, §17.8): the bytes the document gives, and nothing more
/// accepted.
@Suite struct DeviceReadyContentTests {
    let ready = Content(messageId: [UInt8](repeating: 0x11, count: 16), sentAt: 1_700_000_000_000, destination: "bob@relay.test",
                        body: .deviceReady)

    /// The `vector content-device-ready:` line of PROTOCOL.md §17.8.
    func documentedVector() throws -> [UInt8]? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../PROTOCOL.md")
        let prefix = "vector content-device-ready:"
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix(prefix) { return Hex.decode(trimmed.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)) }
        }
        return nil
    }

    @Test("encodes as the published vector and decodes back; shows no text")
    func vector() throws {
        let expected = try #require(try documentedVector(), "PROTOCOL.md has no vector content-device-ready")
        #expect(ready.encoded == expected)
        #expect(try Content(decoding: expected) == ready)
        #expect(ready.body.displayText == nil)
    }

    @Test("a body, or a prefix cut short, is refused, never trapped")
    func malformed() {
        #expect(throws: ProtocolError.self) { try Content(decoding: ready.encoded + [0]) }
        for length in 0..<ready.encoded.count {
            #expect(throws: ProtocolError.self) { try Content(decoding: Array(ready.encoded.prefix(length))) }
        }
    }
}
