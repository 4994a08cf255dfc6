import Foundation
import ParleyCrypto
@testable import ParleyMLS
import Testing

/// A joiner verifies every leaf's signature (RFC 9420 §12.4.3.1, §7.3), spread over the cores at 1,000
/// leaves: every leaf is still checked, and one bad signature anywhere still refuses the tree.
@Suite struct LeafSignaturesAtScaleTests {
    let suite = CipherSuite.x25519ChaCha20Poly1305

    /// A tree of `count` members, each leaf signed by its own key.
    func tree(members count: Int) throws -> RatchetTree {
        var nodes: [Node?] = []
        for index in 0..<count {
            let key = SignaturePrivateKey()
            var leaf = LeafNode(encryptionKey: X25519.KeyPair().publicKey.bytes, signatureKey: key.publicKey,
                                credential: .basic(identity: Array("member-\(index)".utf8)), capabilities: Capabilities(cipherSuites: [suite.id]),
                                source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
            try leaf.sign(suite: suite, key: key, context: nil)
            nodes.append(.leaf(leaf))
            if index < count - 1 { nodes.append(nil) }
        }
        return try RatchetTree(suite: suite, nodes: nodes)
    }

    @Test("1,000 leaves: the tree passes; one bad signature at the start, the middle, a slice boundary or the end is refused")
    func everyLeafIsChecked() throws {
        let tree = try tree(members: 1000)
        let groupID = [UInt8](repeating: 1, count: 32)
        try tree.verifyLeafSignatures(groupID: groupID)
        for member in [0, 1, 499, 500, 501, 998, 999] as [UInt32] {
            var bad = tree
            var leaf = try #require(tree.leaf(member))
            leaf.signature[leaf.signature.count - 1] ^= 0x20
            bad.setNode(2 * member, .leaf(leaf))
            #expect(throws: MLSError.protocolViolation(TreeViolation.leafSignature), "a bad signature at leaf \(member)") {
                try bad.verifyLeafSignatures(groupID: groupID)
            }
        }
    }

    @Test("ParallelChecks runs each check exactly once and says false if any fails")
    func parallelChecks() {
        for count in [0, 1, 63, 64, 127, 128, 1000, 1001] {
            let seen = Seen(count)
            let all = ParallelChecks.all(count) { index in
                seen.lock.withLock { seen.counts[index] += 1; _ = seen.threads.insert(UInt(pthread_self())) }
                return true
            }
            let (counts, threads) = seen.lock.withLock { (seen.counts, seen.threads) }
            #expect(all && counts.allSatisfy { $0 == 1 }, "\(count) checks, each once")
            // How many threads ran them is the scheduler's choice (the caller may finish every slice first).
            #expect(!threads.isEmpty || count == 0)
        }
        for failing in [0, 500, 999] {
            #expect(!ParallelChecks.all(1000) { $0 != failing }, "index \(failing) fails")
        }
    }
}

/// What the checks saw: how often each index ran, and on which threads.
private final class Seen: @unchecked Sendable {
    let lock = NSLock()
    var counts: [Int]
    var threads = Set<UInt>()
    init(_ count: Int) { counts = [Int](repeating: 0, count: count) }
}
