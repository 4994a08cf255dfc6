import ParleyCrypto
@testable import ParleyMLS
import Testing

/// treekem.json (RFC 9420 §7.4–7.6): each member decrypts the given UpdatePaths to the expected path
/// secret and commit secret, the merged tree has the expected hash, and an UpdatePath we create from the
/// same position is decrypted by every other member to our commit secret.
@Suite struct TreeKEMTests {
    /// GroupContext (RFC 9420 §8.1) with no extensions, as the vector prescribes.
    static func groupContext(suite: CipherSuite, groupID: [UInt8], epoch: UInt64, treeHash: [UInt8], confirmedTranscriptHash: [UInt8]) -> [UInt8] {
        GroupContext(cipherSuite: suite.id, groupID: groupID, epoch: epoch, treeHash: treeHash,
                     confirmedTranscriptHash: confirmedTranscriptHash).tlsEncoded
    }

    struct Member {
        var keys: TreePrivateKeys
        var signatureKey: SignaturePrivateKey
    }

    static func members(_ v: [String: Any], tree: RatchetTree) throws -> [UInt32: Member] {
        var result: [UInt32: Member] = [:]
        for entry in try v.array("leaves_private") {
            let leafIndex = UInt32(try entry.int("index"))
            var keys = TreePrivateKeys(leafIndex: leafIndex, leafPrivateKey: try entry.secret("encryption_priv"))
            for path in try entry.array("path_secrets") {
                let node = UInt32(try path.int("node"))
                let secret = try path.secret("path_secret")
                keys.set(tree.suite.deriveKeyPair(ikm: tree.suite.deriveSecret(secret: secret, label: "node")).privateKey, for: node)
            }
            result[leafIndex] = Member(keys: keys, signatureKey: try SignaturePrivateKey(seed: try entry.secret("signature_priv")))
        }
        return result
    }

    @Test func vectors() throws {
        var passed = 0, pathsChecked = 0
        for (suite, v) in try MLSVectors.supportedCases("treekem") {
            let tree = try RatchetTree(suite: suite, encoded: try v.hex("ratchet_tree"))
            let groupID = try v.hex("group_id")
            let epoch = UInt64(try v.int("epoch"))
            let transcript = try v.hex("confirmed_transcript_hash")
            let context = { (treeHash: [UInt8]) in
                Self.groupContext(suite: suite, groupID: groupID, epoch: epoch, treeHash: treeHash, confirmedTranscriptHash: transcript)
            }
            let members = try Self.members(v, tree: tree)
            for member in members.values {
                #expect(member.keys.isConsistent(with: tree), "private state of leaf \(member.keys.leafIndex)")
            }
            for entry in try v.array("update_paths") {
                let sender = UInt32(try entry.int("sender"))
                let path = try UpdatePath(tlsEncoded: try entry.hex("update_path"))
                #expect(path.tlsEncoded == (try entry.hex("update_path")))
                var merged = try TreeKEM.merge(path: path, from: sender, into: tree, groupID: groupID)
                #expect(hexString(merged.treeHash()) == (try entry.string("tree_hash_after")), "tree hash after \(sender)'s path")
                guard let expectedSecrets = entry["path_secrets"] as? [Any] else { throw VectorError.malformed("path_secrets") }
                for (leafIndex, member) in members where leafIndex != sender {
                    let applied = try TreeKEM.applyUpdatePath(path, from: sender, tree: tree, privateKeys: member.keys,
                                                              groupID: groupID, groupContext: context)
                    #expect(hexString(applied.decryptedPathSecret) == (expectedSecrets[Int(leafIndex)] as? String))
                    #expect(hexString(applied.commitSecret) == (try entry.string("commit_secret")))
                    #expect(applied.tree == merged)
                    #expect(applied.privateKeys.isConsistent(with: applied.tree))
                }

                // Our own UpdatePath from the same leaf: every other member reaches our commit secret.
                let committer = try #require(members[sender])
                let created = try TreeKEM.createUpdatePath(tree: tree, leafIndex: sender, leafContent: try #require(tree.leaf(sender)),
                                                           signatureKey: committer.signatureKey, groupID: groupID, groupContext: context)
                var createdTree = created.tree
                try createdTree.validate(groupID: groupID)
                let reparsed = try UpdatePath(tlsEncoded: created.path.tlsEncoded)
                for (leafIndex, member) in members where leafIndex != sender {
                    let applied = try TreeKEM.applyUpdatePath(reparsed, from: sender, tree: tree, privateKeys: member.keys,
                                                              groupID: groupID, groupContext: context)
                    #expect(applied.commitSecret.constantTimeEquals(created.commitSecret))
                    #expect(applied.tree == created.tree)
                }
                pathsChecked += 1
            }
            passed += 1
        }
        print("treekem.json: \(passed) vectors passed (\(pathsChecked) update paths)")
    }
}

/// Bad UpdatePaths are refused with the rule they break, and the receiver's tree and keys stay as they were.
@Suite struct TreeKEMNegativeTests {
    struct Setup {
        var tree: RatchetTree
        var groupID: [UInt8]
        var members: [UInt32: TreeKEMTests.Member]
        var sender: UInt32
        var receiver: UInt32
        var context: ([UInt8]) -> [UInt8]
        var created: CreatedUpdatePath
    }

    /// The suite-1 vector with the most members; leaf `sender` commits, `receiver` is another member.
    static func setup() throws -> Setup {
        let (suite, v) = try #require(try MLSVectors.supportedCases("treekem").filter { $0.0.id == 1 }
            .max { ((try? $0.1.array("leaves_private").count) ?? 0) < ((try? $1.1.array("leaves_private").count) ?? 0) })
        let tree = try RatchetTree(suite: suite, encoded: try v.hex("ratchet_tree"))
        let groupID = try v.hex("group_id")
        let members = try TreeKEMTests.members(v, tree: tree)
        let ordered = members.keys.sorted()
        let sender = ordered[0], receiver = ordered[ordered.count - 1]
        let epoch = UInt64(try v.int("epoch")), transcript = try v.hex("confirmed_transcript_hash")
        let context = { (hash: [UInt8]) in
            TreeKEMTests.groupContext(suite: suite, groupID: groupID, epoch: epoch, treeHash: hash, confirmedTranscriptHash: transcript)
        }
        let created = try TreeKEM.createUpdatePath(tree: tree, leafIndex: sender, leafContent: try #require(tree.leaf(sender)),
                                                   signatureKey: try #require(members[sender]).signatureKey, groupID: groupID,
                                                   groupContext: context)
        return Setup(tree: tree, groupID: groupID, members: members, sender: sender, receiver: receiver, context: context, created: created)
    }

    /// Applies `path` as the receiver, expecting `error`, and checks that the inputs are untouched.
    static func expectRefused(_ s: Setup, _ path: UpdatePath, _ error: MLSError, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let treeBefore = s.tree.encoded
        let keys = try #require(s.members[s.receiver]).keys
        #expect(throws: error, sourceLocation: sourceLocation) {
            try TreeKEM.applyUpdatePath(path, from: s.sender, tree: s.tree, privateKeys: keys, groupID: s.groupID, groupContext: s.context)
        }
        #expect(s.tree.encoded == treeBefore, sourceLocation: sourceLocation)
        #expect(keys.isConsistent(with: s.tree), sourceLocation: sourceLocation)
    }

    /// Re-signs a changed leaf with the committer's key, so that only the rule under test is broken.
    static func resigned(_ s: Setup, _ path: UpdatePath) throws -> UpdatePath {
        var changed = path
        try changed.leafNode.sign(suite: s.tree.suite, key: try #require(s.members[s.sender]).signatureKey,
                                  context: LeafNodeSignatureContext(groupID: s.groupID, leafIndex: s.sender))
        return changed
    }

    @Test func theUntouchedPathIsAccepted() throws {
        let s = try Self.setup()
        let applied = try TreeKEM.applyUpdatePath(s.created.path, from: s.sender, tree: s.tree,
                                                  privateKeys: try #require(s.members[s.receiver]).keys,
                                                  groupID: s.groupID, groupContext: s.context)
        #expect(applied.commitSecret.constantTimeEquals(s.created.commitSecret))
    }

    @Test func aBadLeafSignatureIsRefused() throws {
        let s = try Self.setup()
        var path = s.created.path
        path.leafNode.signature[3] ^= 0x10
        try Self.expectRefused(s, path, .protocolViolation(TreeViolation.leafSignature))
        // Signed for another position in the tree.
        var moved = path
        try moved.leafNode.sign(suite: s.tree.suite, key: try #require(s.members[s.sender]).signatureKey,
                                context: LeafNodeSignatureContext(groupID: s.groupID, leafIndex: s.receiver))
        try Self.expectRefused(s, moved, .protocolViolation(TreeViolation.leafSignature))
    }

    @Test func aSignedButWrongLeafParentHashIsRefused() throws {
        let s = try Self.setup()
        var path = s.created.path
        guard case .commit(let hash) = path.leafNode.source else { Issue.record("not a commit leaf"); return }
        path.leafNode.source = .commit(parentHash: hash.map { $0 ^ 0x01 })
        try Self.expectRefused(s, try Self.resigned(s, path), .protocolViolation(TreeViolation.leafParentHash))
    }

    @Test func aReplacedPathKeyBreaksTheParentHash() throws {
        let s = try Self.setup()
        var path = s.created.path
        path.nodes[path.nodes.count - 1].encryptionKey = X25519.KeyPair().publicKey.bytes
        try Self.expectRefused(s, path, .protocolViolation(TreeViolation.leafParentHash))
    }

    @Test func aReusedKeyIsRefused() throws {
        let s = try Self.setup()
        var path = s.created.path
        path.nodes[0].encryptionKey = try #require(s.tree.leaf(s.receiver)).encryptionKey
        try Self.expectRefused(s, path, .protocolViolation(TreeViolation.duplicateEncryptionKey))
        var sameLeafKey = s.created.path
        sameLeafKey.leafNode.encryptionKey = try #require(s.tree.leaf(s.sender)).encryptionKey
        try Self.expectRefused(s, try Self.resigned(s, sameLeafKey), .protocolViolation("the update path's leaf keeps its old encryption key"))
    }

    @Test func aMissingOrExtraPathNodeIsRefused() throws {
        let s = try Self.setup()
        var short = s.created.path
        short.nodes.removeLast()
        try Self.expectRefused(s, short, .protocolViolation("the update path does not match the sender's filtered direct path"))
        var long = s.created.path
        long.nodes.append(long.nodes[0])
        try Self.expectRefused(s, long, .protocolViolation("the update path does not match the sender's filtered direct path"))
    }

    @Test func aWrongNumberOfCiphertextsIsRefused() throws {
        let s = try Self.setup()
        var path = s.created.path
        let position = try #require(path.nodes.lastIndex { !$0.encryptedPathSecret.isEmpty })
        path.nodes[position].encryptedPathSecret.append(path.nodes[position].encryptedPathSecret[0])
        // The receiver is the rightmost member, so the root's copath subtree holds it.
        try Self.expectRefused(s, path, .protocolViolation("an update path node has the wrong number of encrypted path secrets"))
    }

    @Test func aTamperedCiphertextIsRefused() throws {
        let s = try Self.setup()
        var path = s.created.path
        for i in path.nodes.indices {
            for j in path.nodes[i].encryptedPathSecret.indices { path.nodes[i].encryptedPathSecret[j].ciphertext[0] ^= 1 }
        }
        try Self.expectRefused(s, path, .decryptionFailed)
    }

    /// A path secret encrypted under another group context (here: another epoch) does not decrypt.
    @Test func anotherGroupContextIsRefused() throws {
        var s = try Self.setup()
        let original = s.context
        s.context = { hash in original(hash) + [0] }
        try Self.expectRefused(s, s.created.path, .decryptionFailed)
    }
}

extension TreeKEMNegativeTests {
    /// A well-formed path whose encrypted secrets do not derive its public keys (a sender lying to part of
    /// the group) is refused by the members who decrypt it.
    @Test func aPathSecretThatDoesNotDeriveThePathKeysIsRefused() throws {
        let s = try Self.setup()
        var mergedTree = s.created.tree
        let context = s.context(mergedTree.treeHash())
        var path = s.created.path
        for (position, (_, copathChild)) in mergedTree.filteredDirectPath(of: s.sender).enumerated() {
            path.nodes[position].encryptedPathSecret = try mergedTree.resolution(of: copathChild).map { recipient in
                try s.tree.suite.encryptWithLabel(publicKey: try #require(mergedTree.node(recipient)).encryptionKey,
                                                  label: "UpdatePathNode", context: context, plaintext: SystemRandom().bytes(32))
            }
        }
        try Self.expectRefused(s, path, .protocolViolation("a derived path key differs from the update path's"))
    }
}
