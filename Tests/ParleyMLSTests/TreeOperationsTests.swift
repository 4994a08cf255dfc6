import ParleyCrypto
@testable import ParleyMLS
import Testing

/// tree-operations.json: an Add, Update or Remove applied to a tree gives the expected tree, byte for
/// byte, and its hash (RFC 9420 §12.1.1–12.1.3, §7.7 extension and truncation).
@Suite struct TreeOperationsTests {
    @Test func vectors() throws {
        var passed = 0
        for (suite, v) in try MLSVectors.supportedCases("tree-operations") {
            var tree = try RatchetTree(suite: suite, encoded: try v.hex("tree_before"))
            #expect(hexString(tree.treeHash()) == (try v.string("tree_hash_before")))
            let proposal = try Proposal(tlsEncoded: try v.hex("proposal"))
            try tree.apply(proposal, sender: UInt32(try v.int("proposal_sender")))
            #expect(hexString(tree.encoded) == (try v.string("tree_after")), "tree after \(proposal.type)")
            #expect(hexString(tree.treeHash()) == (try v.string("tree_hash_after")))
            // The cached hashes must agree with a tree decoded afresh (no cache) from the same bytes.
            var fresh = try RatchetTree(suite: suite, encoded: tree.encoded)
            #expect(fresh.treeHash() == tree.treeHash())
            passed += 1
        }
        print("tree-operations.json: \(passed) vectors passed")
    }

    /// Adds take the leftmost blank leaf, extend a full tree, and mark themselves unmerged above; removes
    /// blank the path and truncate; caches follow every step (checked against a cache-free decode).
    @Test func addRemoveAndTruncateKeepCachesRight() throws {
        let suite = CipherSuite.x25519AES128GCM
        func member(_ n: UInt8) -> LeafNode {
            LeafNode(encryptionKey: [n, 1], signatureKey: [n, 2], credential: .basic(identity: [n]),
                     capabilities: Capabilities(cipherSuites: [1]), source: .keyPackage(Lifetime(notBefore: 0, notAfter: 1)),
                     extensions: [])
        }
        var tree = RatchetTree(suite: suite, creator: member(0))
        for n in 1...4 { tree.addLeaf(member(UInt8(n))) }
        #expect(tree.leafCount == 8)
        // A parent key above leaves 0-3 so that later adds there become unmerged.
        tree.setNode(3, .parent(ParentNode(encryptionKey: [9, 9])))
        try tree.removeLeaf(1)
        #expect(tree.parentNode(3) == nil, "removing blanks the direct path")
        tree.setNode(3, .parent(ParentNode(encryptionKey: [9, 9])))
        #expect(tree.addLeaf(member(5)) == 1, "leftmost blank leaf")
        #expect(tree.parentNode(3)?.unmergedLeaves == [1])
        #expect(tree.resolution(of: 3) == [3, 2])
        try tree.removeLeaf(4)
        #expect(tree.leafCount == 4, "the all-blank right half is truncated")
        var fresh = try RatchetTree(suite: suite, encoded: tree.encoded)
        #expect(fresh.treeHash() == tree.treeHash())
        for index in 0..<UInt32(tree.nodes.count) {
            #expect(fresh.resolution(of: index) == tree.resolution(of: index))
        }
        #expect(throws: MLSError.self) { try tree.removeLeaf(4) }
        #expect(throws: MLSError.self) { try tree.removeLeaf(100) }
    }
}
