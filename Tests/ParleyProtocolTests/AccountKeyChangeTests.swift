import Foundation
import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// PROTOCOL.md §3.5: the old account key's statement naming the new one.
@Suite struct AccountKeyChangeTests {
    static func key(_ name: String) -> Ed25519.KeyPair {
        try! Ed25519.KeyPair(seed: SecretBytes(SHA256.hash(Array(name.utf8))))
    }
    let old = Self.key("bob account seed")
    let new = Self.key("bob new account seed")
    let address = "bob@example.org"
    let signedAt: UInt64 = 1_767_225_600_000

    /// The vector PROTOCOL.md §3.5 prints, recomputed: the document cannot drift from the code.
    @Test func vectorMatchesTheDocument() throws {
        let change = AccountKeyChange.sign(address: address, oldKey: old, newKey: new.publicKey, signedAt: signedAt)
        let document = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../PROTOCOL.md").standardized, encoding: .utf8)
        let line = try #require(document.split(separator: "\n").first { $0.hasPrefix("account_key_change = ") })
        #expect(String(line.dropFirst("account_key_change = ".count)) == Hex.encode(change.encoded))
        let body = Array(change.encoded.dropLast(64))
        #expect(body == [0x01, 0x00, 0x0f] + Array(address.utf8) + old.publicKey.bytes + new.publicKey.bytes
                + [0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00])
        #expect(old.publicKey.isValidSignature(change.signature, for: Array("parley.account-key-change.v1".utf8) + [0x00] + body))
        #expect(try AccountKeyChange(verifying: change.encoded) == change)
    }

    @Test func aWrongSignatureAnotherAccountOrAnotherKeyIsRefused() throws {
        let change = AccountKeyChange.sign(address: address, oldKey: old, newKey: new.publicKey, signedAt: signedAt)
        var flipped = change.encoded
        flipped[flipped.count - 1] ^= 1
        #expect(throws: ProtocolError.badSignature("account key change")) { try AccountKeyChange(verifying: flipped) }
        // A statement signed by a key that names itself as old verifies, but is not this account's.
        let stranger = AccountKeyChange.sign(address: address, oldKey: Self.key("mallory"), newKey: new.publicKey, signedAt: signedAt)
        #expect(throws: ProtocolError.self) {
            try AccountKeyChange(verifying: stranger.encoded).check(address: address, oldKey: old.publicKey, newKey: new.publicKey)
        }
        #expect(throws: ProtocolError.self) { try change.check(address: "alice@example.org", oldKey: old.publicKey, newKey: new.publicKey) }
        #expect(throws: ProtocolError.self) { try change.check(address: address, oldKey: old.publicKey, newKey: Self.key("x").publicKey) }
        try change.check(address: address, oldKey: old.publicKey, newKey: new.publicKey)
    }

    @Test func malformedStatementsAreRefusedWithoutTrapping() {
        let good = AccountKeyChange.sign(address: address, oldKey: old, newKey: new.publicKey, signedAt: signedAt).encoded
        for cut in [0, 1, 3, 20, good.count - 1] {
            #expect(throws: ProtocolError.self) { try AccountKeyChange(verifying: Array(good.prefix(cut))) }
        }
        #expect(throws: ProtocolError.self) { try AccountKeyChange(verifying: good + [0]) }
        var version = good
        version[0] = 2
        #expect(throws: ProtocolError.self) { try AccountKeyChange(verifying: version) }
        // A length field that claims more than is there.
        #expect(throws: ProtocolError.self) { try AccountKeyChange(verifying: [0x01, 0xff, 0xff] + Array(repeating: 0, count: 40)) }
        let same = AccountKeyChange.sign(address: address, oldKey: old, newKey: old.publicKey, signedAt: signedAt)
        #expect(throws: ProtocolError.self) { try AccountKeyChange(verifying: same.encoded) }
    }
}
