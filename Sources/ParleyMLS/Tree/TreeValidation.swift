import ParleyCrypto

/// Parent hashes (RFC 9420 §7.9) and the checks a member runs on a tree it did not build: when joining and
/// after merging a commit's UpdatePath.

/// The rule a tree broke, as the text of `MLSError.protocolViolation`. Tests compare against these.
public enum TreeViolation {
    public static let parentHash = "a parent node is not parent-hash valid"
    public static let leafParentHash = "the committer's leaf does not carry the parent hash of its path"
    public static let leafSignature = "a leaf node's signature does not verify"
    public static let duplicateEncryptionKey = "an encryption key appears twice in the tree"
    public static let duplicateSignatureKey = "a signature key appears in two leaves"
    public static let unmergedLeaves = "a parent node's unmerged leaves are not blank-free descendants listed on the whole path"
    public static let treeHash = "the tree hash does not match the group's"
    public static let leafCapabilities = "a leaf node uses an extension or credential type its capabilities do not list"
    public static let repeatedExtension = "a list of extensions holds one type twice"
}

extension RatchetTree {
    /// The parent hash of `parent` with copath child `sibling`: Hash(ParentHashInput) over the parent's
    /// key, its own parent hash, and the sibling's tree hash without the parent's unmerged leaves.
    mutating func parentHash(of parent: UInt32, sibling: UInt32) -> [UInt8] {
        guard let node = parentNode(parent) else { return [] }
        let siblingHash = treeHash(of: sibling, without: node.unmergedLeaves)
        var writer = TLSWriter()
        writer.writeOpaque(node.encryptionKey)
        writer.writeOpaque(node.parentHash)
        writer.writeOpaque(siblingHash)
        hashComputations += 1
        return suite.hash(writer.bytes)
    }

    /// The node below `child` whose parent hash is valid with respect to `parent` (RFC 9420 §7.9.2), if any.
    /// Such a node D is in the child's resolution, the rest of that resolution is exactly the parent's
    /// unmerged leaves under the child (the nodes skipped between D and the parent were blank), and D's
    /// `parent_hash` is the parent's hash with the other child as copath child. At most one node can meet
    /// the structural part, so the hash is computed at most once per side.
    private mutating func parentHashLink(parent: UInt32, child: UInt32) -> UInt32? {
        guard let parentValue = parentNode(parent) else { return nil }
        let resolution = resolution(of: child)
        let childRange = TreeMath.leafRange(of: child)
        let unmergedBelow = parentValue.unmergedLeaves.filter { childRange.contains($0) }.map { 2 * $0 }
        guard resolution.count == unmergedBelow.count + 1 else { return nil }
        let unmergedSet = Set(unmergedBelow)
        let candidates = resolution.filter { !unmergedSet.contains($0) }
        guard candidates.count == 1, let descendant = candidates.first,
              resolution.filter({ $0 != descendant }) == unmergedBelow,
              let carried = node(descendant)?.parentHash else { return nil }
        let sibling = child == TreeMath.left(parent) ? TreeMath.right(parent)! : TreeMath.left(parent)!
        return constantTimeEquals(carried, parentHash(of: parent, sibling: sibling)) ? descendant : nil
    }

    /// Every non-blank parent node must be parent-hash valid: exactly one node below it carries its parent
    /// hash. Since that node is itself a leaf or a (checked) non-blank parent lower down, each parent is
    /// chained back to a leaf, which signed the chain. Cost: one parent hash per side of each parent, plus
    /// the resolutions, O(n log n) at worst; paid when joining, not per commit.
    public mutating func verifyParentHashes() throws(MLSError) {
        for index in stride(from: UInt32(1), to: UInt32(nodeCount), by: 2) where !isBlank(index) {
            let links = [TreeMath.left(index)!, TreeMath.right(index)!].compactMap { parentHashLink(parent: index, child: $0) }
            guard links.count == 1 else { throw .protocolViolation(TreeViolation.parentHash) }
        }
    }

    /// Structural checks on unmerged leaves (RFC 9420 §12.4.3.1): sorted, each a non-blank leaf below the
    /// parent, and listed at every non-blank node between that leaf and the parent.
    public func verifyUnmergedLeaves() throws(MLSError) {
        for index in stride(from: UInt32(1), to: UInt32(nodeCount), by: 2) {
            guard let parent = parentNode(index) else { continue }
            let range = TreeMath.leafRange(of: index)
            guard zip(parent.unmergedLeaves, parent.unmergedLeaves.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw .protocolViolation(TreeViolation.unmergedLeaves)
            }
            for leafIndex in parent.unmergedLeaves {
                guard range.contains(leafIndex), leaf(leafIndex) != nil else {
                    throw .protocolViolation(TreeViolation.unmergedLeaves)
                }
                for between in TreeMath.directPath(2 * leafIndex, leafCount: leafCount) {
                    if between == index { break }
                    if let middle = parentNode(between), !middle.unmergedLeaves.contains(leafIndex) {
                        throw .protocolViolation(TreeViolation.unmergedLeaves)
                    }
                }
            }
        }
    }

    /// HPKE keys are unique across all nodes, signature keys across leaves (RFC 9420 §7.3, §12.4.3.1).
    public func verifyUniqueKeys() throws(MLSError) {
        var encryptionKeys = Set<[UInt8]>()
        var signatureKeys = Set<[UInt8]>()
        for index in 0..<UInt32(nodeCount) {
            guard let node = node(index) else { continue }
            guard encryptionKeys.insert(node.encryptionKey).inserted else {
                throw .protocolViolation(TreeViolation.duplicateEncryptionKey)
            }
            if let leaf = node.leafNode, !signatureKeys.insert(leaf.signatureKey).inserted {
                throw .protocolViolation(TreeViolation.duplicateSignatureKey)
            }
        }
    }

    /// Every leaf's signature, with the group id and leaf index for `update` and `commit` leaves. A joiner
    /// checks them all: at 1,000 leaves these Ed25519 verifications were most of a join's CPU time (issue
    /// #22), so they are spread over the cores (`ParallelChecks`); every one is still made.
    public func verifyLeafSignatures(groupID: [UInt8]) throws(MLSError) {
        let leaves = (0..<leafCount).compactMap { index in leaf(index).map { (index: index, node: $0) } }
        let suite = suite
        let valid = ParallelChecks.all(leaves.count) { position in
            leaves[position].node.hasValidSignature(suite: suite, context: LeafNodeSignatureContext(groupID: groupID, leafIndex: leaves[position].index))
        }
        guard valid else { throw .protocolViolation(TreeViolation.leafSignature) }
    }

    /// The checks on a tree received from outside (a Welcome's or GroupInfo's `ratchet_tree`), apart from
    /// credentials, which the caller validates through its own callback, and the comparison of the tree hash
    /// with the GroupContext's, which `validate(groupID:treeHash:)` adds.
    public mutating func validate(groupID: [UInt8]) throws(MLSError) {
        try verifyUniqueKeys()
        try verifyUnmergedLeaves()
        try verifyLeafSignatures(groupID: groupID)
        for leafIndex in 0..<leafCount {
            if let leaf = leaf(leafIndex) { try leaf.verifyCapabilitiesCoverContents() }
        }
        try verifyParentHashes()
    }

    public mutating func validate(groupID: [UInt8], treeHash expected: [UInt8]) throws(MLSError) {
        guard constantTimeEquals(treeHash(), expected) else { throw .protocolViolation(TreeViolation.treeHash) }
        try validate(groupID: groupID)
    }
}

extension LeafNode {
    /// Extension types that need no listing in `capabilities` (RFC 9420 §7.2).
    static let defaultExtensionTypes: Set<UInt16> = [1, 2, 3, 4, 5]

    /// RFC 9420 §7.3: every non-default extension the leaf carries, and its credential's type, are listed
    /// in its own capabilities.
    public func verifyCapabilitiesCoverContents() throws(MLSError) {
        guard extensions.hasUniqueTypes else { throw .protocolViolation(TreeViolation.repeatedExtension) }
        for ext in extensions where !LeafNode.defaultExtensionTypes.contains(ext.extensionType) {
            guard capabilities.extensions.contains(ext.extensionType) else {
                throw .protocolViolation(TreeViolation.leafCapabilities)
            }
        }
        guard capabilities.credentials.contains(credential.credentialType) else {
            throw .protocolViolation(TreeViolation.leafCapabilities)
        }
    }
}
