import ParleyCrypto

/// TreeKEM (RFC 9420 §7.4–7.6): a committer refreshes the keys on its filtered direct path and sends each
/// path secret to the copath subtree below that node; every other member decrypts one of them and derives
/// the rest. Both directions cost O(log n) derivations plus one HPKE operation per resolution node of the
/// copath (one each in a tree without blanks or unmerged leaves).

/// The HPKE private keys one member holds: its leaf's and those of the ancestors it has path secrets for,
/// by node index. Kept beside the public tree, never encoded with it.
public struct TreePrivateKeys: Sendable {
    public let leafIndex: UInt32
    public private(set) var keys: [UInt32: SecretBytes]
    /// The public half of each key, so that checking keys against the tree costs no scalar multiplication.
    private var publicKeys: [UInt32: [UInt8]]

    public init(leafIndex: UInt32, leafPrivateKey: SecretBytes) {
        self.leafIndex = leafIndex
        keys = [:]
        publicKeys = [:]
        set(leafPrivateKey, for: 2 * leafIndex)
    }

    init(leafIndex: UInt32, leafPair: HPKEKeyPair) {
        self.leafIndex = leafIndex
        keys = [:]
        publicKeys = [:]
        set(leafPair, for: 2 * leafIndex)
    }

    public func key(for node: UInt32) -> SecretBytes? { keys[node] }

    /// Sets a node's private key (its public half is computed once, here).
    public mutating func set(_ key: SecretBytes, for node: UInt32) {
        set(HPKEKeyPair(privateKey: key), for: node)
    }

    public mutating func set(_ pair: HPKEKeyPair, for node: UInt32) {
        keys[node] = pair.privateKey
        publicKeys[node] = pair.publicKey
    }

    /// Sets the key of `node` and of every node above it on `path` (bottom-up node indices) from the path
    /// secret of `node`, as a new member does with the Welcome's path secret (RFC 9420 §12.4.3.1).
    public mutating func setPathSecret(_ pathSecret: SecretBytes, at node: UInt32, path: [UInt32], suite: CipherSuite) {
        var secret = pathSecret
        guard let start = path.firstIndex(of: node) else { return }
        for index in path[start...] {
            set(suite.deriveKeyPair(ikm: suite.deriveSecret(secret: secret, label: "node")), for: index)
            secret = suite.deriveSecret(secret: secret, label: "path")
        }
    }

    /// A new member's keys from a Welcome (RFC 9420 §12.4.3.1): its leaf key, and when the GroupSecrets carry a
    /// path secret, the keys of the lowest common ancestor of its leaf and the committer's and of every
    /// non-blank node above it, each derived from the one below. Each derived key must be the private half of
    /// the public key in that node.
    public init(joining tree: RatchetTree, leafIndex: UInt32, leafPrivateKey: SecretBytes, pathSecret: SecretBytes?,
                committer: UInt32) throws(MLSError) {
        self.init(leafIndex: leafIndex, leafPrivateKey: leafPrivateKey)
        if let pathSecret {
            guard committer != leafIndex, committer < tree.leafCount else { throw .protocolViolation("path secret from an invalid signer") }
            let ancestor = TreeMath.commonAncestor(2 * leafIndex, 2 * committer)
            let above = TreeMath.directPath(ancestor, leafCount: tree.leafCount).filter { !tree.isBlank($0) }
            setPathSecret(pathSecret, at: ancestor, path: [ancestor] + above, suite: tree.suite)
        }
        guard isConsistent(with: tree) else {
            throw .protocolViolation("a welcome's keys do not match the public keys of the tree")
        }
    }

    /// Drops keys of nodes that are blank in `tree`, hold another public key, or lie outside it (after a
    /// truncation): they were replaced and must be forgotten (RFC 9420 §7.5, deletion).
    public mutating func forgetStaleKeys(tree: RatchetTree) {
        for node in keys.keys where tree.node(node)?.encryptionKey != publicKeys[node] {
            keys[node] = nil
            publicKeys[node] = nil
        }
    }

    /// Whether every key here is the private half of the public key in the same node of `tree`.
    public func isConsistent(with tree: RatchetTree) -> Bool {
        keys.keys.allSatisfy { node in
            guard let held = tree.node(node) else { return false }
            return held.encryptionKey == publicKeys[node]
        }
    }
}

/// What a committer keeps after creating an UpdatePath.
public struct CreatedUpdatePath: Sendable {
    public var path: UpdatePath
    /// The tree with the path merged, parent hashes set and the new leaf in place.
    public var tree: RatchetTree
    public var privateKeys: TreePrivateKeys
    public var commitSecret: SecretBytes
    /// The path secret of each node of the filtered direct path, for the Welcome's `path_secret`.
    public var pathSecrets: [UInt32: SecretBytes]
}

/// What a receiver gets from applying an UpdatePath.
public struct AppliedUpdatePath: Sendable {
    public var tree: RatchetTree
    public var privateKeys: TreePrivateKeys
    public var commitSecret: SecretBytes
    /// The path secret it decrypted: that of the lowest node of the path above the receiver.
    public var decryptedPathSecret: SecretBytes
}

public enum TreeKEM {
    static let updatePathLabel = "UpdatePathNode"

    /// Creates an UpdatePath for `leafIndex` in `tree` (which already has the commit's proposals applied).
    ///
    /// - Parameters:
    ///   - leafContent: the committer's new leaf (credential, capabilities, extensions, signature key); its
    ///     encryption key, source and signature are replaced here.
    ///   - newMembers: leaves added by this commit, left out of every resolution encrypted to.
    ///   - groupContext: the encoded provisional GroupContext for the tree hash of the new tree.
    public static func createUpdatePath(
        tree: consuming RatchetTree, leafIndex: UInt32, leafContent: LeafNode, signatureKey: SignaturePrivateKey,
        groupID: [UInt8], newMembers: Set<UInt32> = [], groupContext: (_ treeHash: [UInt8]) -> [UInt8],
        random: any RandomSource = SystemRandom()
    ) throws(MLSError) -> CreatedUpdatePath {
        let suite = tree.suite
        guard tree.leaf(leafIndex) != nil else { throw .protocolViolation("update path from a blank leaf") }
        tree.blankDirectPath(of: leafIndex)
        let filtered = tree.filteredDirectPath(of: leafIndex)

        let leafSecret = random.secret(suite.hashLength)
        let leafKeys = suite.deriveKeyPair(ikm: suite.deriveSecret(secret: leafSecret, label: "node"))
        var privateKeys = TreePrivateKeys(leafIndex: leafIndex, leafPair: leafKeys)
        var pathSecrets: [UInt32: SecretBytes] = [:]
        var publicKeys: [[UInt8]] = []
        var secret = suite.deriveSecret(secret: leafSecret, label: "path")
        for (node, _) in filtered {
            pathSecrets[node] = secret
            let pair = suite.deriveKeyPair(ikm: suite.deriveSecret(secret: secret, label: "node"))
            privateKeys.set(pair, for: node)
            publicKeys.append(pair.publicKey)
            secret = suite.deriveSecret(secret: secret, label: "path")
        }
        let commitSecret = secret

        var leaf = leafContent
        leaf.encryptionKey = leafKeys.publicKey
        leaf.source = .commit(parentHash: tree.setPathNodes(filtered: filtered, publicKeys: publicKeys))
        try leaf.sign(suite: suite, key: signatureKey, context: LeafNodeSignatureContext(groupID: groupID, leafIndex: leafIndex))
        tree.setNode(2 * leafIndex, .leaf(leaf))

        let context = groupContext(tree.treeHash())
        var nodes: [UpdatePathNode] = []
        for ((node, copathChild), publicKey) in zip(filtered, publicKeys) {
            let plaintext = pathSecrets[node]!.unprotectedBytes
            var sealed: [HPKECiphertext] = []
            for recipient in tree.resolution(of: copathChild) where !isNewMember(recipient, newMembers) {
                guard let key = tree.node(recipient)?.encryptionKey else { continue }
                sealed.append(try suite.encryptWithLabel(publicKey: key, label: updatePathLabel, context: context, plaintext: plaintext))
            }
            nodes.append(UpdatePathNode(encryptionKey: publicKey, encryptedPathSecret: sealed))
        }
        return CreatedUpdatePath(path: UpdatePath(leafNode: leaf, nodes: nodes), tree: tree, privateKeys: privateKeys,
                                 commitSecret: commitSecret, pathSecrets: pathSecrets)
    }

    /// Merges `path` from `sender` into `tree` (proposals already applied) and checks it: one path node per
    /// filtered direct path node, a `commit` leaf validly signed for this group and position whose parent
    /// hash is that of the merged path, and keys new to the tree. Returns the merged tree. Public part only:
    /// it is what a member runs before decrypting, and what a new member's tree validation relies on.
    public static func merge(path: UpdatePath, from sender: UInt32, into tree: consuming RatchetTree,
                             groupID: [UInt8]) throws(MLSError) -> RatchetTree {
        guard let oldLeaf = tree.leaf(sender) else { throw .protocolViolation("update path from a blank leaf") }
        guard case .commit(let claimedParentHash) = path.leafNode.source else {
            throw .protocolViolation("the update path's leaf node is not from a commit")
        }
        guard path.leafNode.hasValidSignature(suite: tree.suite, context: LeafNodeSignatureContext(groupID: groupID, leafIndex: sender)) else {
            throw .protocolViolation(TreeViolation.leafSignature)
        }
        guard path.leafNode.encryptionKey != oldLeaf.encryptionKey else {
            throw .protocolViolation("the update path's leaf keeps its old encryption key")
        }
        tree.blankDirectPath(of: sender)
        let filtered = tree.filteredDirectPath(of: sender)
        guard filtered.count == path.nodes.count else {
            throw .protocolViolation("the update path does not match the sender's filtered direct path")
        }
        // Every new key must be new to the tree (RFC 9420 §7.3): the path's parents were just blanked and the
        // sender's leaf is replaced, so any match elsewhere is a reused key. The scan is over all nodes, but
        // compares an 8-byte prefix against the few new keys' prefixes, so it costs no hashing of the tree.
        let newKeys = path.nodes.map(\.encryptionKey) + [path.leafNode.encryptionKey]
        guard Set(newKeys).count == newKeys.count else { throw .protocolViolation(TreeViolation.duplicateEncryptionKey) }
        let prefixes = Set(newKeys.map(Self.prefix))
        for index in 0..<UInt32(tree.nodeCount) where index != 2 * sender {
            guard let key = tree.node(index)?.encryptionKey, prefixes.contains(Self.prefix(key)) else { continue }
            if newKeys.contains(key) { throw .protocolViolation(TreeViolation.duplicateEncryptionKey) }
        }
        let leafParentHash = tree.setPathNodes(filtered: filtered, publicKeys: path.nodes.map(\.encryptionKey))
        guard constantTimeEquals(leafParentHash, claimedParentHash) else {
            throw .protocolViolation(TreeViolation.leafParentHash)
        }
        tree.setNode(2 * sender, .leaf(path.leafNode))
        return tree
    }

    /// Applies a received UpdatePath: merges it (see `merge`), then decrypts the path secret meant for the
    /// receiver and derives the keys above it, checking each against the public key the sender sent.
    public static func applyUpdatePath(
        _ path: UpdatePath, from sender: UInt32, tree: consuming RatchetTree, privateKeys: TreePrivateKeys,
        groupID: [UInt8], newMembers: Set<UInt32> = [], groupContext: (_ treeHash: [UInt8]) -> [UInt8]
    ) throws(MLSError) -> AppliedUpdatePath {
        let me = privateKeys.leafIndex
        guard me != sender else { throw .protocolViolation("a member cannot apply its own update path") }
        var tree = try merge(path: path, from: sender, into: tree, groupID: groupID)
        let suite = tree.suite
        // The merge changed only the sender's path, not the copath's resolutions, so this is the filtered
        // direct path the sender encrypted along.
        let filtered = tree.filteredDirectPath(of: sender)

        guard let position = filtered.firstIndex(where: { TreeMath.isInSubtree(2 * me, of: $0.copathChild) }) else {
            throw .protocolViolation("the receiver is not below the sender's path")
        }
        let recipients = tree.resolution(of: filtered[position].copathChild).filter { !isNewMember($0, newMembers) }
        let ciphertexts = path.nodes[position].encryptedPathSecret
        guard ciphertexts.count == recipients.count else {
            throw .protocolViolation("an update path node has the wrong number of encrypted path secrets")
        }
        guard let slot = recipients.firstIndex(where: { privateKeys.key(for: $0) != nil }) else {
            throw .protocolViolation("no private key for the update path's recipients")
        }
        let context = groupContext(tree.treeHash())
        let decrypted = SecretBytes(try suite.decryptWithLabel(privateKey: privateKeys.key(for: recipients[slot])!,
                                                              label: updatePathLabel, context: context, ciphertexts[slot]))
        guard decrypted.count == suite.hashLength else { throw .protocolViolation("a path secret has the wrong length") }

        var keys = privateKeys
        var secret = decrypted
        for index in position..<filtered.count {
            let pair = suite.deriveKeyPair(ikm: suite.deriveSecret(secret: secret, label: "node"))
            guard pair.publicKey == path.nodes[index].encryptionKey else {
                throw .protocolViolation("a derived path key differs from the update path's")
            }
            keys.set(pair, for: filtered[index].node)
            secret = suite.deriveSecret(secret: secret, label: "path")
        }
        keys.forgetStaleKeys(tree: tree)
        return AppliedUpdatePath(tree: tree, privateKeys: keys, commitSecret: secret, decryptedPathSecret: decrypted)
    }

    private static func prefix(_ key: [UInt8]) -> UInt64 {
        key.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static func isNewMember(_ node: UInt32, _ newMembers: Set<UInt32>) -> Bool {
        TreeMath.isLeaf(node) && newMembers.contains(node / 2)
    }
}

extension RatchetTree {
    /// Sets the filtered direct path's parent nodes to the new public keys with no unmerged leaves, and
    /// their parent hashes from the root down (RFC 9420 §7.9). Returns the parent hash for the leaf below.
    mutating func setPathNodes(filtered: [(node: UInt32, copathChild: UInt32)], publicKeys: [[UInt8]]) -> [UInt8] {
        var parentHashAbove: [UInt8] = []
        for ((node, copathChild), publicKey) in zip(filtered, publicKeys).reversed() {
            setNode(node, .parent(ParentNode(encryptionKey: publicKey, parentHash: parentHashAbove)))
            parentHashAbove = parentHash(of: node, sibling: copathChild)
        }
        return parentHashAbove
    }
}
