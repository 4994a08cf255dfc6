import Foundation
import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// Content types 0x06 reaction, 0x07 edit, 0x08 delete: the bytes PROTOCOL.md §12.2 gives as vectors.
@Suite struct MessageActionContentTests {
    let id = [UInt8](repeating: 0x11, count: 16), target = [UInt8](repeating: 0x22, count: 16)

    func content(_ body: Content.Body) -> Content {
        Content(messageId: id, sentAt: 1_700_000_000_000, destination: "bob@relay.test", body: body)
    }

    /// The `vector NAME: HEX` lines of PROTOCOL.md, so the document and the code cannot disagree.
    func documentedVectors() throws -> [String: [UInt8]] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../PROTOCOL.md")
        var vectors: [String: [UInt8]] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") where line.hasPrefix("vector content-") {
            let parts = line.dropFirst("vector ".count).split(separator: ":", maxSplits: 1)
            vectors[String(parts[0])] = Hex.decode(parts[1].trimmingCharacters(in: .whitespaces))
        }
        return vectors
    }

    @Test func actionsEncodeAsThePublishedVectors() throws {
        let vectors = try documentedVectors()
        let cases: [(String, Content.Body)] = [
            ("content-reaction", .reaction(emoji: "👍", targetAuthor: "bob@relay.test", target: target, remove: false)),
            ("content-edit", .edit(target: target, text: "fixed")),
            ("content-delete", .delete(target: target)),
        ]
        for (name, body) in cases {
            let expected = try #require(vectors[name], "PROTOCOL.md has no vector \(name)")
            #expect(content(body).encoded == expected, "\(name)")
            #expect(try Content(decoding: expected) == content(body), "\(name)")
            #expect(content(body).body.displayText == nil)
        }
    }

    @Test func aRemovalAndADeliveryAccessKeyRoundTrip() throws {
        let removal = content(.reaction(emoji: "👨‍👩‍👧", targetAuthor: "alice@relay.test:7000", target: target, remove: true))
        #expect(try Content(decoding: removal.encoded) == removal)
        let carrying = content(.edit(target: target, text: "with key")).carrying(deliveryAccess: [UInt8](repeating: 9, count: DeliveryAccess.keyLength))
        #expect(try Content(decoding: carrying.encoded) == carrying)
    }

    @Test func malformedActionsAreRefusedNeverTrapped() throws {
        // An empty emoji, one longer than 64 bytes, a cut target id, trailing bytes, invalid UTF-8.
        let long = String(repeating: "👍", count: 17)
        var bad: [[UInt8]] = [
            content(.reaction(emoji: "", targetAuthor: "bob@relay.test", target: target, remove: false)).encoded,
            content(.reaction(emoji: long, targetAuthor: "bob@relay.test", target: target, remove: false)).encoded,
            Array(content(.delete(target: target)).encoded.dropLast(3)),
            content(.delete(target: target)).encoded + [0],
        ]
        var edit = content(.edit(target: target, text: "ab")).encoded
        edit[edit.count - 1] = 0xFF
        bad.append(edit)
        for bytes in bad { #expect(throws: ProtocolError.self) { try Content(decoding: bytes) } }
        // Every prefix of a valid reaction fails cleanly.
        let valid = content(.reaction(emoji: "👍", targetAuthor: "bob@relay.test", target: target, remove: false)).encoded
        for n in 0..<valid.count { #expect(throws: ProtocolError.self) { try Content(decoding: Array(valid.prefix(n))) } }
    }
}
