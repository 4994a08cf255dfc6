import ParleyCrypto
@testable import ParleyMLS
import Testing

/// RFC 9420 §7.3: each rule refuses a leaf that breaks only that rule, with that rule's error.
@Suite struct LeafNodeValidationTests {
    static let suite = CipherSuite.x25519AES128GCM
    static let groupID: [UInt8] = Array("leaf rules".utf8)

    /// A four-member tree of unsigned placeholder members (only the leaf under test is checked).
    static func tree() throws -> RatchetTree {
        var tree = RatchetTree(suite: suite, creator: TreeCostTests.leaf(0))
        for n in 1..<4 { tree.addLeaf(TreeCostTests.leaf(n)) }
        return tree
    }

    /// A correctly signed leaf for `use`, changed by `change` before signing.
    static func signedLeaf(_ use: LeafNodeUse, key: SignaturePrivateKey = SignaturePrivateKey(),
                           _ change: (inout LeafNode) -> Void = { _ in }) throws -> LeafNode {
        var leaf = TreeCostTests.leaf(99, encryptionKey: X25519.KeyPair().publicKey.bytes, signatureKey: key.publicKey)
        switch use {
        case .keyPackage: leaf.source = .keyPackage(Lifetime(notBefore: 1000, notAfter: 2000))
        case .update: leaf.source = .update
        case .commit: leaf.source = .commit(parentHash: [])
        }
        change(&leaf)
        let context: LeafNodeSignatureContext? = switch use {
        case .keyPackage: nil
        case .update(let i), .commit(let i): LeafNodeSignatureContext(groupID: groupID, leafIndex: i)
        }
        try leaf.sign(suite: suite, key: key, context: context)
        return leaf
    }

    static func expect(_ rule: String, _ leaf: LeafNode, _ use: LeafNodeUse, required: RequiredCapabilities? = nil, now: UInt64? = nil,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let tree = try Self.tree()
        #expect(throws: MLSError.protocolViolation(rule), sourceLocation: sourceLocation) {
            try tree.validateLeafNode(leaf, use: use, groupID: groupID, requiredCapabilities: required, now: now)
        }
    }

    @Test func validLeavesPass() throws {
        let tree = try Self.tree()
        try tree.validateLeafNode(try Self.signedLeaf(.keyPackage), use: .keyPackage, groupID: Self.groupID, now: 1500)
        try tree.validateLeafNode(try Self.signedLeaf(.update(leafIndex: 2)), use: .update(leafIndex: 2), groupID: Self.groupID)
        try tree.validateLeafNode(try Self.signedLeaf(.commit(leafIndex: 1)), use: .commit(leafIndex: 1), groupID: Self.groupID,
                                  requiredCapabilities: RequiredCapabilities(extensionTypes: [ExtensionType.externalSenders], credentialTypes: [1]))
        // A member's update may keep its own signature key: the leaf it replaces is not compared with it.
        let key = SignaturePrivateKey()
        var withRealMember = tree
        withRealMember.setNode(4, .leaf(TreeCostTests.leaf(2, signatureKey: key.publicKey)))
        try withRealMember.validateLeafNode(try Self.signedLeaf(.update(leafIndex: 2), key: key), use: .update(leafIndex: 2), groupID: Self.groupID)
        #expect(throws: MLSError.protocolViolation(TreeViolation.duplicateSignatureKey)) {
            try withRealMember.validateLeafNode(try Self.signedLeaf(.update(leafIndex: 1), key: key), use: .update(leafIndex: 1), groupID: Self.groupID)
        }
    }

    @Test func theSourceMustFitTheUse() throws {
        try Self.expect(TreeViolation.leafSource, try Self.signedLeaf(.keyPackage), .update(leafIndex: 1))
        try Self.expect(TreeViolation.leafSource, try Self.signedLeaf(.update(leafIndex: 1)), .commit(leafIndex: 1))
        try Self.expect(TreeViolation.leafSource, try Self.signedLeaf(.commit(leafIndex: 1)), .keyPackage)
    }

    @Test func theSignatureMustVerifyForThisGroupAndPosition() throws {
        var leaf = try Self.signedLeaf(.update(leafIndex: 1))
        try Self.expect(TreeViolation.leafSignature, leaf, .update(leafIndex: 2))
        leaf.signature[0] ^= 1
        try Self.expect(TreeViolation.leafSignature, leaf, .update(leafIndex: 1))
    }

    @Test func requiredCapabilitiesMustBeListed() throws {
        let required = RequiredCapabilities(extensionTypes: [0x0A0A])
        try Self.expect(TreeViolation.requiredCapabilities, try Self.signedLeaf(.keyPackage), .keyPackage, required: required)
        let listing = try Self.signedLeaf(.keyPackage) { $0.capabilities.extensions = [0x0A0A] }
        try Self.tree().validateLeafNode(listing, use: .keyPackage, groupID: Self.groupID, requiredCapabilities: required)
        try Self.expect(TreeViolation.requiredCapabilities, try Self.signedLeaf(.keyPackage), .keyPackage,
                        required: RequiredCapabilities(credentialTypes: [Credential.x509Type]))
    }

    @Test func theLifetimeIsCheckedWhenATimeIsGiven() throws {
        try Self.expect(TreeViolation.leafLifetime, try Self.signedLeaf(.keyPackage), .keyPackage, now: 2001)
        try Self.expect(TreeViolation.leafLifetime, try Self.signedLeaf(.keyPackage), .keyPackage, now: 999)
    }

    @Test func extensionsMustBeInTheLeafsCapabilities() throws {
        let leaf = try Self.signedLeaf(.keyPackage) { $0.extensions = [MLSExtension(type: 0xBEEF, data: [])] }
        try Self.expect(TreeViolation.leafCapabilities, leaf, .keyPackage)
    }

    @Test func credentialTypesMustBeSupportedBothWays() throws {
        let x509 = try Self.signedLeaf(.keyPackage) {
            $0.credential = .x509(certificates: [[1]])
            $0.capabilities.credentials = [1, 2]
        }
        try Self.expect(TreeViolation.credentialTypeSupport, x509, .keyPackage)
        let basicOnlyX509 = try Self.signedLeaf(.keyPackage) { $0.capabilities.credentials = [2] }
        try Self.expect(TreeViolation.leafCapabilities, basicOnlyX509, .keyPackage)
    }

    @Test func keysMustBeNewToTheGroup() throws {
        let tree = try Self.tree()
        let member = try #require(tree.leaf(3))
        try Self.expect(TreeViolation.duplicateEncryptionKey, try Self.signedLeaf(.keyPackage) { $0.encryptionKey = member.encryptionKey }, .keyPackage)
        let key = SignaturePrivateKey()
        var withMembersKey = try Self.tree()
        var changed = member
        changed.signatureKey = key.publicKey
        withMembersKey.setNode(6, .leaf(changed))
        #expect(throws: MLSError.protocolViolation(TreeViolation.duplicateSignatureKey)) {
            try withMembersKey.validateLeafNode(try Self.signedLeaf(.keyPackage, key: key), use: .keyPackage, groupID: Self.groupID)
        }
        try Self.expect(TreeViolation.unchangedUpdateKey, try Self.signedLeaf(.update(leafIndex: 3)) { $0.encryptionKey = member.encryptionKey },
                        .update(leafIndex: 3))
    }
}
