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
