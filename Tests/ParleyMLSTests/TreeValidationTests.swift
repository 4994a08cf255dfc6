import ParleyCrypto
@testable import ParleyMLS
import Testing

/// tree-validation.json: resolutions and tree hashes of every node, parent-hash validity and leaf
/// signatures of trees with blanks, trailing blanks and unmerged leaves (RFC 9420 §4.1.1, §7.8, §7.9).
@Suite struct TreeValidationTests {
    @Test func vectors() throws {
        var passed = 0
        for (suite, v) in try MLSVectors.supportedCases("tree-validation") {
            var tree = try RatchetTree(suite: suite, encoded: try v.hex("tree"))
            #expect(tree.encoded == (try v.hex("tree")), "re-encoding")
            guard let resolutions = v["resolutions"] as? [[Int]], let hashes = v["tree_hashes"] as? [String] else {
                throw VectorError.malformed("resolutions / tree_hashes")
            }
            #expect(resolutions.count == tree.nodes.count && hashes.count == tree.nodes.count)
            for index in 0..<UInt32(tree.nodes.count) {
                #expect(tree.resolution(of: index) == resolutions[Int(index)].map(UInt32.init), "resolution of \(index)")
                #expect(hexString(tree.treeHash(of: index)) == hashes[Int(index)], "tree hash of \(index)")
            }
            try tree.validate(groupID: try v.hex("group_id"))
            passed += 1
        }
        print("tree-validation.json: \(passed) vectors passed")
    }

    /// The richest tree of the file for suite 1: unmerged leaves and skipped blanks in its parent-hash chains.
    private func richTree() throws -> (RatchetTree, [UInt8]) {
        let cases = try MLSVectors.supportedCases("tree-validation").filter { $0.0.id == 1 }
        let v = try #require(cases.last).1
        return (try RatchetTree(suite: cases[0].0, encoded: try v.hex("tree")), try v.hex("group_id"))
    }

    private func expectViolation(_ rule: String, _ tree: RatchetTree, groupID: [UInt8]) {
        var copy = tree
        #expect(throws: MLSError.protocolViolation(rule)) { try copy.validate(groupID: groupID) }
    }

    @Test func aChangedParentHashIsRefused() throws {
        let (tree, groupID) = try richTree()
        var bad = tree
        let index = try #require(stride(from: UInt32(1), to: UInt32(tree.nodes.count), by: 2).first { tree.parentNode($0) != nil })
        var parent = try #require(tree.parentNode(index))
        parent.parentHash = parent.parentHash.isEmpty ? [0] : parent.parentHash.map { $0 ^ 1 }
        bad.setNode(index, .parent(parent))
        expectViolation(TreeViolation.parentHash, bad, groupID: groupID)
    }

    @Test func aReplacedParentKeyBreaksTheParentHashChain() throws {
        let (tree, groupID) = try richTree()
        var bad = tree
        var parent = try #require(tree.parentNode(tree.root))
        parent.encryptionKey = X25519.KeyPair().publicKey.bytes
        bad.setNode(tree.root, .parent(parent))
        expectViolation(TreeViolation.parentHash, bad, groupID: groupID)
    }

    /// The tree hash binds every node: a tree that differs in one leaf no longer matches the group's hash.
    @Test func aTreeHashMismatchIsRefused() throws {
        var (tree, groupID) = try richTree()
        let expected = tree.treeHash()
        var other = tree
        let member = try #require(tree.occupiedLeaves.last)
        var leaf = try #require(tree.leaf(member))
        leaf.extensions.append(MLSExtension(type: 0xff00, data: [1]))
        other.setNode(2 * member, .leaf(leaf))
        #expect(throws: MLSError.protocolViolation(TreeViolation.treeHash)) { try other.validate(groupID: groupID, treeHash: expected) }
        try tree.validate(groupID: groupID, treeHash: expected)
    }

    @Test func aBadLeafSignatureIsRefused() throws {
        let (tree, groupID) = try richTree()
        var bad = tree
        var leaf = try #require(tree.leaf(0))
        leaf.signature[0] ^= 1
        bad.setNode(0, .leaf(leaf))
        expectViolation(TreeViolation.leafSignature, bad, groupID: groupID)
        // Signatures of update and commit leaves bind the group: another group id fails too.
        var other = tree
        #expect(throws: MLSError.protocolViolation(TreeViolation.leafSignature)) { try other.validate(groupID: groupID + [0]) }
    }

    @Test func duplicateKeysAreRefused() throws {
        let (tree, groupID) = try richTree()
        let members = tree.occupiedLeaves
        var sameEncryption = tree
        var second = try #require(tree.leaf(members[1]))
        second.encryptionKey = try #require(tree.leaf(members[0])).encryptionKey
        sameEncryption.setNode(2 * members[1], .leaf(second))
        expectViolation(TreeViolation.duplicateEncryptionKey, sameEncryption, groupID: groupID)

        var sameSignature = tree
        second = try #require(tree.leaf(members[1]))
        second.signatureKey = try #require(tree.leaf(members[0])).signatureKey
        sameSignature.setNode(2 * members[1], .leaf(second))
        expectViolation(TreeViolation.duplicateSignatureKey, sameSignature, groupID: groupID)
    }

    @Test func unmergedLeavesMustBeOccupiedDescendants() throws {
        let (tree, groupID) = try richTree()
        var bad = tree
        var root = try #require(tree.parentNode(tree.root))
        // A leaf index past the tree.
        root.unmergedLeaves.append(tree.leafCount)
        bad.setNode(tree.root, .parent(root))
        expectViolation(TreeViolation.unmergedLeaves, bad, groupID: groupID)
    }

    @Test func malformedTreesAreRefusedWhenDecoding() throws {
        let (tree, _) = try richTree()
        let bytes = tree.encoded
        // Every truncation fails without trapping; so does one extra byte.
        for cut in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: MLSError.self) { try RatchetTree(suite: tree.suite, encoded: Array(bytes[..<cut])) }
        }
        #expect(throws: MLSError.trailingBytes) { try RatchetTree(suite: tree.suite, encoded: bytes + [0]) }
        // A trailing blank node, and a parent where a leaf belongs.
        var trailing = TLSWriter()
        trailing.writeVector { w in for node in tree.nodes { w.writeOptional(node) }; w.writeUInt8(0); w.writeUInt8(0) }
        #expect(throws: MLSError.invalidValue("ratchet tree ends with a blank node")) {
            try RatchetTree(suite: tree.suite, encoded: trailing.bytes)
        }
        var swapped = TLSWriter()
        swapped.writeVector { w in w.writeOptional(tree.nodes[1]) }
        #expect(throws: MLSError.self) { try RatchetTree(suite: tree.suite, encoded: swapped.bytes) }
    }

    /// Thousands of mutated trees (flipped, inserted and deleted bytes, from a fixed seed) decode or throw an
    /// MLSError, and any that decodes also validates or throws one: nothing traps.
    @Test func mutatedTreesNeverTrap() throws {
        let (tree, groupID) = try richTree()
        let bytes = tree.encoded
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var decoded = 0, refused = 0
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0...next(3) {
                let at = next(mutated.count)
                switch next(3) {
                case 0: mutated[at] ^= UInt8(1 << next(8))
                case 1: mutated.insert(UInt8(next(256)), at: at)
                default: mutated.remove(at: at)
                }
            }
            do {
                var candidate = try RatchetTree(suite: tree.suite, encoded: mutated)
                decoded += 1
                do { try candidate.validate(groupID: groupID) } catch { refused += 1 }
            } catch {
                refused += 1
            }
        }
        // Almost every mutation breaks the encoding or a signature; the count shows the test exercised both.
        #expect(refused >= 2900)
        print("mutated trees: \(decoded) decoded, \(refused) refused")
    }
}
