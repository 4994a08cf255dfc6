/// Leaf node validation against a group's tree (RFC 9420 §7.3), for every place a LeafNode is accepted: a
/// KeyPackage in an Add, an Update, a commit's UpdatePath. Credentials themselves are the caller's (its
/// validation callback); everything else the RFC lists is here.

extension RequiredCapabilities {
    /// Whether a leaf's capabilities list every required type. Default extensions and proposals (those of
    /// RFC 9420 itself) are supported without being listed.
    public func areMet(by capabilities: Capabilities) -> Bool {
        extensionTypes.allSatisfy { Self.defaultExtensionTypes.contains($0) || capabilities.extensions.contains($0) }
            && proposalTypes.allSatisfy { Self.defaultProposalTypes.contains($0) || capabilities.proposals.contains($0) }
            && credentialTypes.allSatisfy { capabilities.credentials.contains($0) }
    }
}

/// Where a LeafNode is being accepted, which fixes the source it must have and what its signature binds.
public enum LeafNodeUse: Sendable {
    case keyPackage
    case update(leafIndex: UInt32)
    case commit(leafIndex: UInt32)

    var replacedLeaf: UInt32? {
        switch self {
        case .keyPackage: nil
        case .update(let index), .commit(let index): index
        }
    }
}

extension TreeViolation {
    public static let leafSource = "a leaf node's source does not fit where it is used"
    public static let leafLifetime = "a leaf node is outside its lifetime"
    public static let requiredCapabilities = "a leaf node lacks a capability the group requires"
    public static let credentialTypeSupport = "a leaf node's credential type is not supported by every member, or it does not support theirs"
    public static let unchangedUpdateKey = "an update keeps the leaf's encryption key"
}

extension RatchetTree {
    /// Checks `leaf` for `use` in this tree (RFC 9420 §7.3): its source and signature, the group's required
    /// capabilities, credential types supported both ways with every other member, its lifetime when `now`
    /// (seconds since the Unix epoch) is given and it has one, its extensions listed in its capabilities,
    /// a new encryption key for an update, and signature and encryption keys used by no other member.
    /// Linear in the members: it is the RFC's rule, and a plain scan of the leaves.
    public func validateLeafNode(_ leaf: LeafNode, use: LeafNodeUse, groupID: [UInt8],
                                 requiredCapabilities: RequiredCapabilities? = nil, now: UInt64? = nil) throws(MLSError) {
        let context: LeafNodeSignatureContext?
        switch (use, leaf.source) {
        case (.keyPackage, .keyPackage): context = nil
        case (.update(let index), .update), (.commit(let index), .commit): context = LeafNodeSignatureContext(groupID: groupID, leafIndex: index)
        default: throw .protocolViolation(TreeViolation.leafSource)
        }
        guard leaf.hasValidSignature(suite: suite, context: context) else { throw .protocolViolation(TreeViolation.leafSignature) }
        if let requiredCapabilities, !requiredCapabilities.areMet(by: leaf.capabilities) {
            throw .protocolViolation(TreeViolation.requiredCapabilities)
        }
        if let now, case .keyPackage(let lifetime) = leaf.source, !lifetime.contains(now) {
            throw .protocolViolation(TreeViolation.leafLifetime)
        }
        try leaf.verifyCapabilitiesCoverContents()
        let replaced = use.replacedLeaf
        if case .update(let index) = use, let old = self.leaf(index), old.encryptionKey == leaf.encryptionKey {
            throw .protocolViolation(TreeViolation.unchangedUpdateKey)
        }
        for index in 0..<leafCount where index != replaced {
            guard let member = self.leaf(index) else { continue }
            guard member.capabilities.credentials.contains(leaf.credential.credentialType),
                  leaf.capabilities.credentials.contains(member.credential.credentialType) else {
                throw .protocolViolation(TreeViolation.credentialTypeSupport)
            }
            guard member.signatureKey != leaf.signatureKey else { throw .protocolViolation(TreeViolation.duplicateSignatureKey) }
            guard member.encryptionKey != leaf.encryptionKey else { throw .protocolViolation(TreeViolation.duplicateEncryptionKey) }
        }
    }
}
