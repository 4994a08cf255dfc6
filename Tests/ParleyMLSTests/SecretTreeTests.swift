import ParleyCrypto
@testable import ParleyMLS
import Testing

/// secret-tree.json (RFC 9420 §9) and the out-of-order rules.
@Suite struct SecretTreeTests {
    @Test func vectors() throws {
        var keysChecked = 0
        for (suite, v) in try MLSVectors.supportedCases("secret-tree") {
            let senderData = try v.object("sender_data")
            let keys = SenderDataKeys.derive(suite: suite, senderDataSecret: try senderData.secret("sender_data_secret"),
                                             ciphertext: try senderData.hex("ciphertext"))
            #expect(hexString(keys.key) == (try senderData.string("key")))
            #expect(hexString(keys.nonce) == (try senderData.string("nonce")))

            guard let leafLists = v["leaves"] as? [[[String: Any]]] else { throw VectorError.malformed("leaves") }
            var tree = SecretTree(suite: suite, encryptionSecret: try v.secret("encryption_secret"), leafCount: UInt32(leafLists.count))
            // Leaves in reverse order, to derive the tree in an order other than the natural one.
            for (leaf, generations) in leafLists.enumerated().reversed() {
                for g in generations {
                    let generation = UInt32(try g.int("generation"))
                    let handshake = try tree.key(leaf: UInt32(leaf), kind: .handshake, generation: generation)
                    let application = try tree.key(leaf: UInt32(leaf), kind: .application, generation: generation)
                    #expect(hexString(handshake.key) == (try g.string("handshake_key")), "leaf \(leaf) generation \(generation)")
                    #expect(hexString(handshake.nonce) == (try g.string("handshake_nonce")))
                    #expect(hexString(application.key) == (try g.string("application_key")))
                    #expect(hexString(application.nonce) == (try g.string("application_nonce")))
                    keysChecked += 1
                }
            }
        }
        print("secret-tree.json: \(keysChecked) leaf generations passed")
    }

    static func tree() -> SecretTree {
        SecretTree(suite: .x25519ChaCha20Poly1305, encryptionSecret: SecretBytes([UInt8](repeating: 1, count: 32)), leafCount: 4)
    }

    @Test func outOfOrderKeysOpenOnceAndOnlyOnce() throws {
        var sender = Self.tree()
        let sent = try (0..<5).map { _ in try sender.nextKey(leaf: 2, kind: .application) }
        var receiver = Self.tree()
        for g in [UInt32(3), 0, 4, 1, 2] {
            let key = try receiver.key(leaf: 2, kind: .application, generation: g)
            #expect(key.key.constantTimeEquals(sent[Int(g)].key))
        }
        for g in UInt32(0)..<5 {
            #expect(throws: MLSError.generationUnavailable(g)) { try receiver.key(leaf: 2, kind: .application, generation: g) }
        }
        // The handshake ratchet of the same leaf is independent.
        #expect(!(try receiver.key(leaf: 2, kind: .handshake, generation: 0)).key.constantTimeEquals(sent[0].key))
    }

    @Test func jumpsBeyondTheWindowAreRefused() throws {
        var receiver = Self.tree()
        let limit = SecretTree.maximumForwardDistance
        #expect(throws: MLSError.generationUnavailable(limit + 1)) { try receiver.key(leaf: 0, kind: .application, generation: limit + 1) }
        _ = try receiver.key(leaf: 0, kind: .application, generation: limit)
    }

    @Test func skippedKeysAreBounded() throws {
        var receiver = Self.tree()
        let retained = UInt32(SecretTree.maximumRetainedKeys)
        _ = try receiver.key(leaf: 1, kind: .application, generation: retained + 10)
        // The oldest skipped keys were dropped, the newest kept.
        #expect(throws: MLSError.generationUnavailable(0)) { try receiver.key(leaf: 1, kind: .application, generation: 0) }
        _ = try receiver.key(leaf: 1, kind: .application, generation: retained + 9)
    }

    @Test func leavesOutsideTheTreeAreRefused() {
        var tree = Self.tree()
        #expect(throws: MLSError.protocolViolation("sender leaf outside the tree")) { try tree.key(leaf: 4, kind: .application, generation: 0) }
    }
}
