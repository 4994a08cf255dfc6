import ParleyCrypto

/// Which of a sender's two hash ratchets a key comes from (RFC 9420 §9.1).
public enum RatchetKind: Sendable, Hashable {
    case handshake
    case application
}

/// One AEAD key and nonce of a sender's ratchet, for one generation.
public struct RatchetKey: Sendable {
    public let generation: UInt32
    public let key: SecretBytes
    public let nonce: [UInt8]
}

/// The secret tree of an epoch (§9): node secrets are derived from the encryption secret down to the leaf
/// a sender occupies, on first use, and each parent secret is deleted once its children exist. Every
/// leaf then runs a handshake and an application hash ratchet (§9.1).
///
/// Out-of-order messages: a receiver may jump at most `maximumForwardDistance` generations ahead, and
/// keeps the keys it skipped (at most `maximumRetainedKeys` per ratchet, oldest dropped first) until they
/// are used. A used key, and the ratchet secret it came from, are deleted: a generation opens once.
public struct SecretTree: Sendable {
    public static let maximumForwardDistance: UInt32 = 1000
    public static let maximumRetainedKeys = 128

    public let suite: CipherSuite
    public let leafCount: UInt32
    /// Node secrets derived but not yet split into their children, by node index.
    fileprivate var nodeSecrets: [UInt32: SecretBytes]
    fileprivate var ratchets: [UInt32: LeafRatchets] = [:]

    fileprivate struct LeafRatchets: Sendable {
        var handshake: HashRatchet
        var application: HashRatchet
    }

    /// `leafCount` is the ratchet tree's number of leaves (a power of two in RFC 9420 trees; any other
    /// count is rounded up, as the tree would be).
    public init(suite: CipherSuite, encryptionSecret: SecretBytes, leafCount: UInt32) {
        self.suite = suite
        var width: UInt32 = 1
        while width < leafCount { width <<= 1 }
        self.leafCount = width
        nodeSecrets = [width - 1: encryptionSecret]
    }

    /// The next key to send with, advancing the ratchet.
    public mutating func nextKey(leaf: UInt32, kind: RatchetKind) throws(MLSError) -> RatchetKey {
        try withRatchet(leaf: leaf, kind: kind) { (r: inout HashRatchet) throws(MLSError) in try r.next() }
    }

    /// The key of `generation`, for receiving. Throws when it was used already, was skipped too long ago,
    /// or lies too far ahead.
    public mutating func key(leaf: UInt32, kind: RatchetKind, generation: UInt32) throws(MLSError) -> RatchetKey {
        try withRatchet(leaf: leaf, kind: kind) { (r: inout HashRatchet) throws(MLSError) in try r.key(for: generation) }
    }

    /// Whether `generation` of `leaf`'s ratchet lies behind it with its key gone (used, not skipped).
    /// For a member's own leaf that means it sent with that generation: its sending ratchet skips none.
    func hasUsed(leaf: UInt32, kind: RatchetKind, generation: UInt32) -> Bool {
        guard let pair = ratchets[leaf] else { return false }
        let ratchet = kind == .handshake ? pair.handshake : pair.application
        return (ratchet.exhausted || generation < ratchet.generation) && ratchet.skipped[generation] == nil
    }

    private mutating func withRatchet(leaf: UInt32, kind: RatchetKind,
                                      _ body: (inout HashRatchet) throws(MLSError) -> RatchetKey) throws(MLSError) -> RatchetKey {
        var pair: LeafRatchets
        if let existing = ratchets[leaf] {
            pair = existing
        } else {
            // Kept at once: the leaf's secret is gone from the tree whether or not this generation is available.
            pair = try makeRatchets(leaf: leaf)
            ratchets[leaf] = pair
        }
        let result: RatchetKey
        switch kind {
        case .handshake: result = try body(&pair.handshake)
        case .application: result = try body(&pair.application)
        }
        ratchets[leaf] = pair
        return result
    }

    private mutating func makeRatchets(leaf: UInt32) throws(MLSError) -> LeafRatchets {
        guard leaf < leafCount else { throw .protocolViolation("sender leaf outside the tree") }
        let leafSecret = try deriveLeafSecret(leaf)
        return LeafRatchets(
            handshake: HashRatchet(suite: suite, secret: suite.expandWithLabel(secret: leafSecret, label: "handshake", context: [], length: suite.hashLength)),
            application: HashRatchet(suite: suite, secret: suite.expandWithLabel(secret: leafSecret, label: "application", context: [], length: suite.hashLength)))
    }

    /// Walks from the deepest stored ancestor of the leaf down to it, keeping each sibling's secret and
    /// deleting each parent's.
    private mutating func deriveLeafSecret(_ leaf: UInt32) throws(MLSError) -> SecretBytes {
        let target = leaf * 2
        var path: [UInt32] = [leafCount - 1]
        var node = leafCount - 1
        while node != target {
            let level = UInt32((~node).trailingZeroBitCount)
            node = target < node ? node ^ (1 << (level - 1)) : node ^ (3 << (level - 1))
            path.append(node)
        }
        guard let start = path.lastIndex(where: { nodeSecrets[$0] != nil }), var secret = nodeSecrets.removeValue(forKey: path[start]) else {
            throw .protocolViolation("leaf secret already consumed")
        }
        var parent = path[start]
        for child in path[(start + 1)...] {
            let level = UInt32((~parent).trailingZeroBitCount)
            let left = parent ^ (1 << (level - 1))
            let right = parent ^ (3 << (level - 1))
            let leftSecret = suite.expandWithLabel(secret: secret, label: "tree", context: Array("left".utf8), length: suite.hashLength)
            let rightSecret = suite.expandWithLabel(secret: secret, label: "tree", context: Array("right".utf8), length: suite.hashLength)
            if child == left {
                nodeSecrets[right] = rightSecret
                secret = leftSecret
            } else {
                nodeSecrets[left] = leftSecret
                secret = rightSecret
            }
            parent = child
        }
        return secret
    }
}

/// One hash ratchet: the secret for `generation`, and the keys of generations skipped on the way there.
struct HashRatchet: Sendable {
    let suite: CipherSuite
    fileprivate(set) var secret: SecretBytes
    fileprivate(set) var generation: UInt32 = 0
    fileprivate var exhausted = false
    fileprivate var skipped: [UInt32: RatchetKey] = [:]

    init(suite: CipherSuite, secret: SecretBytes) {
        self.suite = suite
        self.secret = secret
    }

    mutating func next() throws(MLSError) -> RatchetKey {
        try key(for: generation)
    }

    mutating func key(for wanted: UInt32) throws(MLSError) -> RatchetKey {
        if exhausted || wanted < generation {
            guard let key = skipped.removeValue(forKey: wanted) else { throw .generationUnavailable(wanted) }
            return key
        }
        guard wanted - generation <= SecretTree.maximumForwardDistance else { throw .generationUnavailable(wanted) }
        while generation < wanted {
            let key = current()
            skipped[generation] = key
            if skipped.count > SecretTree.maximumRetainedKeys, let oldest = skipped.keys.min() { skipped[oldest] = nil }
            advance()
        }
        let key = current()
        advance()
        return key
    }

    private func current() -> RatchetKey {
        RatchetKey(generation: generation,
                   key: suite.deriveTreeSecret(secret: secret, label: "key", generation: generation, length: suite.aeadKeyLength),
                   nonce: suite.deriveTreeSecret(secret: secret, label: "nonce", generation: generation, length: suite.aeadNonceLength).unprotectedBytes)
    }

    private mutating func advance() {
        secret = suite.deriveTreeSecret(secret: secret, label: "secret", generation: generation, length: suite.hashLength)
        if generation == .max { exhausted = true } else { generation += 1 }
    }
}

/// The key and nonce that protect a PrivateMessage's SenderData, from a sample of its ciphertext (§6.3.2).
public enum SenderDataKeys {
    public static func derive(suite: CipherSuite, senderDataSecret: SecretBytes, ciphertext: [UInt8]) -> (key: SecretBytes, nonce: [UInt8]) {
        let sample = Array(ciphertext.prefix(suite.hashLength))
        return (suite.expandWithLabel(secret: senderDataSecret, label: "key", context: sample, length: suite.aeadKeyLength),
                suite.expandWithLabel(secret: senderDataSecret, label: "nonce", context: sample, length: suite.aeadNonceLength).unprotectedBytes)
    }
}

// MARK: - Stored form (part of a member's serialised group state; see GroupState.swift)

func writeSecret(_ secret: SecretBytes, to writer: inout TLSWriter) {
    secret.withUnsafeBytes { writer.writeOpaque($0) }
}

func readSecret(_ reader: inout TLSReader) throws(MLSError) -> SecretBytes {
    var bytes = try reader.readOpaque()
    defer { wipe(&bytes) }
    return SecretBytes(bytes)
}

extension SecretTree {
    /// Node secrets and ratchets, in increasing index order so that equal trees encode equally.
    func encode(to writer: inout TLSWriter) {
        writer.writeUInt32(leafCount)
        writer.writeVector { w in
            for node in nodeSecrets.keys.sorted() {
                w.writeUInt32(node)
                writeSecret(nodeSecrets[node]!, to: &w)
            }
        }
        writer.writeVector { w in
            for leaf in ratchets.keys.sorted() {
                w.writeUInt32(leaf)
                ratchets[leaf]!.handshake.encode(to: &w)
                ratchets[leaf]!.application.encode(to: &w)
            }
        }
    }

    init(suite: CipherSuite, from reader: inout TLSReader) throws(MLSError) {
        self.suite = suite
        leafCount = try reader.readUInt32()
        guard leafCount > 0, leafCount.nonzeroBitCount == 1 else { throw .invalidValue("secret tree size") }
        var nodes: [UInt32: SecretBytes] = [:]
        for (node, secret) in try reader.readVector({ (r: inout TLSReader) throws(MLSError) in (try r.readUInt32(), try readSecret(&r)) }) {
            // In UInt64: a tree of 2^31 leaves has 2^32 − 1 nodes, and 2 × 2^31 overflows a UInt32.
            guard UInt64(node) < 2 * UInt64(leafCount) - 1 else { throw .invalidValue("secret tree node") }
            nodes[node] = secret
        }
        nodeSecrets = nodes
        for (leaf, pair) in try reader.readVector({ (r: inout TLSReader) throws(MLSError) in
            (try r.readUInt32(), LeafRatchets(handshake: try HashRatchet(suite: suite, from: &r), application: try HashRatchet(suite: suite, from: &r)))
        }) {
            guard leaf < leafCount else { throw .invalidValue("secret tree leaf") }
            ratchets[leaf] = pair
        }
    }
}

extension HashRatchet {
    func encode(to writer: inout TLSWriter) {
        writeSecret(secret, to: &writer)
        writer.writeUInt32(generation)
        writer.writeUInt8(exhausted ? 1 : 0)
        writer.writeVector { w in
            for generation in skipped.keys.sorted() {
                let key = skipped[generation]!
                w.writeUInt32(generation)
                writeSecret(key.key, to: &w)
                w.writeOpaque(key.nonce)
            }
        }
    }

    init(suite: CipherSuite, from reader: inout TLSReader) throws(MLSError) {
        self.init(suite: suite, secret: try readSecret(&reader))
        generation = try reader.readUInt32()
        exhausted = try reader.readUInt8() == 1
        for key in try reader.readVector({ (r: inout TLSReader) throws(MLSError) in
            RatchetKey(generation: try r.readUInt32(), key: try readSecret(&r), nonce: try r.readOpaque())
        }) {
            skipped[key.generation] = key
        }
        guard skipped.count <= SecretTree.maximumRetainedKeys else { throw .invalidValue("retained ratchet keys") }
    }
}
