import Foundation
import ParleyCrypto
@testable import ParleyMLS
import Testing

/// The tree's cost grows with log(n): counted in hashes and HPKE encryptions, not timed.
@Suite struct TreeCostTests {
    static let suite = CipherSuite.x25519ChaCha20Poly1305
    static let groupID: [UInt8] = Array("cost".utf8)

    static func leaf(_ n: Int, encryptionKey: [UInt8]? = nil, signatureKey: [UInt8]? = nil) -> LeafNode {
        let id = withUnsafeBytes(of: UInt32(n).bigEndian, Array.init)
        return LeafNode(encryptionKey: encryptionKey ?? SHA256.hash([1] + id), signatureKey: signatureKey ?? SHA256.hash([2] + id),
                        credential: .basic(identity: id), capabilities: Capabilities(cipherSuites: [3]),
                        source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
    }

    /// A group of `members` leaves with every parent node set, as after everyone has committed once. Leaf 0
    /// (the committer) and leaf 1 (a receiver) have real keys.
    static func fullGroup(members: Int, committer: SignaturePrivateKey, receiver: HPKEKeyPair) throws -> RatchetTree {
        var nodes: [Node?] = []
        for index in 0..<(2 * members - 1) {
            if index % 2 == 0 {
                let n = index / 2
                nodes.append(.leaf(leaf(n, encryptionKey: n == 1 ? receiver.publicKey : nil, signatureKey: n == 0 ? committer.publicKey : nil)))
            } else {
                nodes.append(.parent(ParentNode(encryptionKey: X25519.KeyPair().publicKey.bytes)))
            }
        }
        return try RatchetTree(suite: suite, nodes: nodes)
    }

    static func context(_ treeHash: [UInt8]) -> [UInt8] {
        GroupContext(cipherSuite: suite.id, groupID: groupID, epoch: 1, treeHash: treeHash, confirmedTranscriptHash: []).tlsEncoded
    }

    /// Adding one member with an UpdatePath, in a group of 1,000 and of 4,000: the committer and a member
    /// each compute a bounded multiple of log2(n) hashes, and the path carries one ciphertext per level.
    @Test(arguments: [1000, 4000]) func addingOneMemberCostsLogN(members: Int) throws {
        let signer = SignaturePrivateKey()
        let receiverKeys = Self.suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        var tree = try Self.fullGroup(members: members, committer: signer, receiver: receiverKeys)
        _ = tree.treeHash()   // the state before the commit has its hashes, as a member's would
        let levels = Int(log2(Double(members)).rounded(.up)) + 1

        var committer = tree
        committer.hashComputations = 0
        let newMember = committer.addLeaf(Self.leaf(members))
        let created = try TreeKEM.createUpdatePath(tree: committer, leafIndex: 0, leafContent: try #require(tree.leaf(0)),
                                                   signatureKey: signer, groupID: Self.groupID, newMembers: [newMember],
                                                   groupContext: Self.context)
        var committed = created.tree
        _ = committed.treeHash()
        let committerHashes = committed.hashComputations
        let ciphertexts = created.path.nodes.reduce(0) { $0 + $1.encryptedPathSecret.count }
        #expect(ciphertexts <= levels, "\(ciphertexts) HPKE encryptions for \(members) members")
        #expect(committerHashes <= 6 * levels, "committer: \(committerHashes) hashes for \(members) members")

        tree.hashComputations = 0
        _ = tree.addLeaf(Self.leaf(members))
        let applied = try TreeKEM.applyUpdatePath(created.path, from: 0, tree: tree,
                                                  privateKeys: TreePrivateKeys(leafIndex: 1, leafPrivateKey: receiverKeys.privateKey),
                                                  groupID: Self.groupID, newMembers: [newMember], groupContext: Self.context)
        #expect(applied.commitSecret.constantTimeEquals(created.commitSecret))
        #expect(applied.tree.hashComputations <= 6 * levels, "member: \(applied.tree.hashComputations) hashes for \(members) members")
        print("adding one member to \(members): committer \(committerHashes) hashes, member \(applied.tree.hashComputations) hashes, \(ciphertexts) HPKE encryptions")
    }

    /// The one linear step: an add to a full tree doubles it, and the tree hash covers the new blank half
    /// (each blank leaf's hash includes its index, so none can be shared). That is one hash per new node,
    /// once per doubling, so adds cost O(1) hashes amortised; the old half's cached hashes are all kept.
    @Test func extendingAFullTreeHashesTheNewHalfOnce() throws {
        var tree = try Self.fullGroup(members: 512, committer: SignaturePrivateKey(), receiver: Self.suite.deriveKeyPair(ikm: SecretBytes.random(count: 32)))
        _ = tree.treeHash()
        tree.hashComputations = 0
        tree.addLeaf(Self.leaf(512))
        _ = tree.treeHash()
        #expect(tree.hashComputations == 1023 + 1, "the new half's 1,023 nodes (the new leaf among them) and the new root")
        tree.hashComputations = 0
        tree.addLeaf(Self.leaf(513))
        _ = tree.treeHash()
        #expect(tree.hashComputations <= 11, "the next add rehashes one path")
    }

    /// A new member joins from the Welcome's path secret: the keys it derives are those of the tree, and the
    /// UpdatePath carried no ciphertext for it (it gets the path secret through the Welcome instead).
    @Test func aNewMemberDerivesItsPathKeysFromTheWelcomePathSecret() throws {
        let signer = SignaturePrivateKey()
        let receiverKeys = Self.suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        var tree = try Self.fullGroup(members: 8, committer: signer, receiver: receiverKeys)
        try tree.removeLeaf(6)
        let joinerKeys = Self.suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let joiner = tree.addLeaf(Self.leaf(100, encryptionKey: joinerKeys.publicKey))
        #expect(joiner == 6)
        let created = try TreeKEM.createUpdatePath(tree: tree, leafIndex: 0, leafContent: try #require(tree.leaf(0)), signatureKey: signer,
                                                   groupID: Self.groupID, newMembers: [joiner], groupContext: Self.context)
        let ancestor = TreeMath.commonAncestor(0, 2 * joiner)
        #expect(created.path.nodes.last?.encryptedPathSecret.count == 2, "the right half: its parent and leaf 7, not the joiner")
        let keys = try TreePrivateKeys(joining: created.tree, leafIndex: joiner, leafPrivateKey: joinerKeys.privateKey,
                                       pathSecret: created.pathSecrets[ancestor], committer: 0)
        #expect(keys.key(for: ancestor) != nil)
        #expect(keys.isConsistent(with: created.tree))
        // A wrong path secret is refused.
        #expect(throws: MLSError.protocolViolation("a welcome's keys do not match the public keys of the tree")) {
            try TreePrivateKeys(joining: created.tree, leafIndex: joiner, leafPrivateKey: joinerKeys.privateKey,
                                pathSecret: SecretBytes.random(count: 32), committer: 0)
        }
    }
}
