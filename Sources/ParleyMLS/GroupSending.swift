import ParleyCrypto

/// What a member sends: new groups, commits (with their Welcome) and application messages (§§11, 12.4.1).
extension Group {
    /// A new group whose only member is the creator (§11). `leaf` is the creator's signed leaf (as in its
    /// KeyPackage) and `encryptionPrivateKey` the private half of its encryption key.
    public static func create(suite: CipherSuite, groupID: [UInt8], leaf: LeafNode, encryptionPrivateKey: SecretBytes,
                              signatureKey: SignaturePrivateKey, extensions: [MLSExtension] = [],
                              credentialValidator: @escaping CredentialValidator = CredentialValidation.anyBasicCredential,
                              random: any RandomSource = SystemRandom()) throws(MLSError) -> Group {
        guard leaf.signatureKey == signatureKey.publicKey else { throw .invalidKey }
        guard HPKEKeyPair(privateKey: encryptionPrivateKey).publicKey == leaf.encryptionKey else { throw .invalidKey }
        var tree = RatchetTree(suite: suite, creator: leaf)
        let context = GroupContext(cipherSuite: suite.id, groupID: groupID, epoch: 0, treeHash: tree.treeHash(), confirmedTranscriptHash: [],
                                   extensions: extensions)
        let secrets = EpochSecrets(suite: suite, initSecret: random.secret(suite.hashLength), commitSecret: suite.zeroSecret, pskSecret: nil,
                                   groupContext: context.tlsEncoded)
        let tag = secrets.confirmationTag(confirmedTranscriptHash: [])
        var group = Group(suite: suite, context: context, tree: tree, myLeaf: 0, signatureKey: signatureKey,
                          interimTranscriptHash: TranscriptHash.interim(suite: suite, confirmed: [], confirmationTag: tag),
                          privateKeys: TreePrivateKeys(leafIndex: 0, leafPrivateKey: encryptionPrivateKey), secrets: secrets,
                          secretTree: SecretTree(suite: suite, encryptionSecret: secrets.encryptionSecret, leafCount: tree.leafCount),
                          externalPSKs: [:], credentialValidator: credentialValidator)
        group.resumptionPSKs[0] = secrets.resumptionPSK
        return group
    }

    /// What a commit produces for the committer to send.
    public struct CommitOutput: Sendable {
        /// The Commit, for every member of the old epoch.
        public var message: MLSMessage
        /// For the members it adds (nil when it adds none).
        public var welcome: Welcome?
        /// The new epoch's signed GroupInfo, with the `ratchet_tree` and `external_pub` extensions.
        public var groupInfo: GroupInfo
        /// For a commit sent as a PrivateMessage: the committer's state of the old epoch with the handshake
        /// key that encrypted the commit marked used. It is saved before the commit is sent, so that a commit
        /// made again in that epoch (the delivery service's answer to the first was lost, or refused it for
        /// a reason other than a newer epoch) takes the next key instead of encrypting other content under
        /// the same key and nonce (the reuse guard of §6.3.1 only makes that unlikely). Nil for a PublicMessage.
        public var stateWithCommitKeySpent: Group?
    }

    /// Commits the given proposals (by value) and moves this member to the new epoch. A path is included
    /// when the proposals require one, or when `updatePath` is set (a self-update with an empty list).
    public mutating func commit(adding keyPackages: [KeyPackage] = [], removing leaves: [UInt32] = [],
                                preSharedKeys: [PreSharedKeyID] = [], updatePath: Bool = true,
                                wireFormat: WireFormat = .publicMessage,
                                random: any RandomSource = SystemRandom()) throws(MLSError) -> CommitOutput {
        guard isActive else { throw .protocolViolation("this member was removed from the group") }
        guard reInit == nil else { throw .protocolViolation("the group was reinitialised") }
        guard let signatureKey else { throw .protocolViolation("this member has no signing key") }
        guard wireFormat == .publicMessage || wireFormat == .privateMessage else { throw .protocolViolation("a commit travels as a group message") }
        var next = self
        let output = try next.makeCommit(byValue: leaves.map { .remove(leafIndex: $0) } + keyPackages.map { .add($0) } + preSharedKeys.map { .preSharedKey($0) },
                                         forcePath: updatePath, wireFormat: wireFormat, signatureKey: signatureKey, random: random)
        self = next
        return output
    }

    /// Sends a proposal for a later commit (by any member) as `wireFormat`; it is also cached here, so
    /// that this member's own next commit includes it by reference.
    public mutating func propose(_ proposal: Proposal, wireFormat: WireFormat = .publicMessage,
                                 random: any RandomSource = SystemRandom()) throws(MLSError) -> MLSMessage {
        guard isActive else { throw .protocolViolation("this member was removed from the group") }
        guard reInit == nil else { throw .protocolViolation("the group was reinitialised") }
        guard let signatureKey else { throw .protocolViolation("this member has no signing key") }
        if case .update = proposal { throw .protocolViolation("use proposeUpdate for an Update") }
        var next = self
        let message = try next.sendProposal(proposal, wireFormat: wireFormat, signatureKey: signatureKey, random: random)
        self = next
        return message
    }

    /// Proposes replacing this member's leaf with one holding a fresh encryption key; the private key is
    /// kept until a commit of this epoch includes the proposal.
    public mutating func proposeUpdate(wireFormat: WireFormat = .publicMessage,
                                       random: any RandomSource = SystemRandom()) throws(MLSError) -> MLSMessage {
        guard isActive else { throw .protocolViolation("this member was removed from the group") }
        guard reInit == nil else { throw .protocolViolation("the group was reinitialised") }
        guard let signatureKey, var leaf = tree.leaf(myLeaf) else { throw .protocolViolation("this member has no signing key") }
        let keys = suite.deriveKeyPair(ikm: random.secret(suite.hashLength))
        leaf.encryptionKey = keys.publicKey
        leaf.source = .update
        try leaf.sign(suite: suite, key: signatureKey, context: LeafNodeSignatureContext(groupID: context.groupID, leafIndex: myLeaf))
        var next = self
        let message = try next.sendProposal(.update(leaf), wireFormat: wireFormat, signatureKey: signatureKey, random: random)
        next.pendingUpdateKeys[keys.publicKey] = keys.privateKey
        self = next
        return message
    }

    /// Signs and protects `proposal` (a PrivateMessage takes the next key of this member's handshake
    /// ratchet) and caches it. Called on a copy: the caller keeps the state only when this succeeds.
    private mutating func sendProposal(_ proposal: Proposal, wireFormat: WireFormat, signatureKey: SignaturePrivateKey,
                                       random: any RandomSource) throws(MLSError) -> MLSMessage {
        let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .member(leafIndex: myLeaf), body: .proposal(proposal))
        let authenticated = AuthenticatedContent.sign(wireFormat: wireFormat, content: content, suite: suite, key: signatureKey, context: context)
        let message = try protect(authenticated, random: random)
        pendingProposals.append(PendingProposal(reference: suite.makeProposalRef(authenticated.tlsEncoded), proposal: proposal,
                                                sender: .member(leafIndex: myLeaf)))
        return message
    }

    /// A handshake message of this epoch in its wire format: a PublicMessage with this epoch's membership
    /// tag, or a PrivateMessage under this member's next handshake key.
    private mutating func protect(_ authenticated: AuthenticatedContent, random: any RandomSource) throws(MLSError) -> MLSMessage {
        switch authenticated.wireFormat {
        case .publicMessage:
            MLSMessage(body: .publicMessage(try PublicMessage(protecting: authenticated, suite: suite, membershipKey: secrets.membershipKey,
                                                              context: context)))
        case .privateMessage:
            MLSMessage(body: .privateMessage(try PrivateMessage.protect(authenticated, suite: suite, secretTree: &secretTree,
                                                                        senderDataSecret: secrets.senderDataSecret, random: random)))
        default:
            throw .protocolViolation("a handshake message travels as a PublicMessage or a PrivateMessage")
        }
    }

    private mutating func makeCommit(byValue: [Proposal], forcePath: Bool, wireFormat: WireFormat, signatureKey: SignaturePrivateKey,
                                     random: any RandomSource) throws(MLSError) -> CommitOutput {
        let me = Sender.member(leafIndex: myLeaf)
        // Proposals received (or sent) this epoch go by reference, except this member's own Updates: a
        // committer's path replaces its leaf anyway (§12.2 forbids committing one's own Update).
        var items: [(item: ProposalOrRef, proposal: Proposal, sender: Sender)] = []
        for pending in pendingProposals {
            if case .update = pending.proposal, pending.sender == me { continue }
            items.append((.reference(pending.reference), pending.proposal, pending.sender))
        }
        items += byValue.map { (.proposal($0), $0, me) }
        let proposals = items.map(\.proposal)
        try validate(items.map { ($0.proposal, $0.sender) }, committer: me, isExternal: false)
        var newTree = tree
        var newMembers: [(leaf: UInt32, keyPackage: KeyPackage)] = []
        var pskIDs: [PreSharedKeyID] = []
        var extensions = context.extensions
        for case .groupContextExtensions(let new) in proposals { extensions = new }
        for case (_, .update(let leaf), .member(let index)) in items { try newTree.updateLeaf(index, with: leaf) }
        for case .remove(let index) in proposals { try newTree.removeLeaf(index) }
        for case .add(let keyPackage) in proposals { newMembers.append((newTree.addLeaf(keyPackage.leafNode), keyPackage)) }
        for case .preSharedKey(let id) in proposals { pskIDs.append(id) }
        let needsPath = forcePath || proposals.isEmpty || proposals.contains {
            switch $0 {
            case .update, .remove, .groupContextExtensions: true
            default: false
            }
        }

        let newEpoch = context.epoch + 1
        let groupID = context.groupID, confirmedBefore = context.confirmedTranscriptHash, suiteID = suite.id
        let newExtensions = extensions
        let provisional = { (treeHash: [UInt8]) -> [UInt8] in
            GroupContext(cipherSuite: suiteID, groupID: groupID, epoch: newEpoch, treeHash: treeHash,
                         confirmedTranscriptHash: confirmedBefore, extensions: newExtensions).tlsEncoded
        }
        var keys = privateKeys
        var commitSecret = suite.zeroSecret
        var path: UpdatePath?
        var pathSecrets: [UInt32: SecretBytes] = [:]
        if needsPath {
            guard let ownLeaf = newTree.leaf(myLeaf) else { throw .protocolViolation("own leaf is blank") }
            let created = try TreeKEM.createUpdatePath(tree: newTree, leafIndex: myLeaf, leafContent: ownLeaf, signatureKey: signatureKey,
                                                       groupID: groupID, newMembers: Set(newMembers.map(\.leaf)),
                                                       groupContext: provisional, random: random)
            newTree = created.tree
            keys = created.privateKeys
            commitSecret = created.commitSecret
            path = created.path
            pathSecrets = created.pathSecrets
        } else {
            keys.forgetStaleKeys(tree: newTree)
        }

        let content = FramedContent(groupID: groupID, epoch: context.epoch, sender: me,
                                    body: .commit(Commit(proposals: items.map(\.item), path: path)))
        var authenticated = AuthenticatedContent.sign(wireFormat: wireFormat, content: content, suite: suite, key: signatureKey, context: context)
        let confirmed = TranscriptHash.confirmed(suite: suite, interim: interimTranscriptHash, wireFormat: wireFormat.rawValue,
                                                 content: content, signature: authenticated.auth.signature)
        let newContext = GroupContext(cipherSuite: suite.id, groupID: groupID, epoch: newEpoch, treeHash: newTree.treeHash(),
                                      confirmedTranscriptHash: confirmed, extensions: newExtensions)
        var psks: [(id: PreSharedKeyID, secret: SecretBytes)] = []
        for id in pskIDs { psks.append((id, try resolve(id))) }
        let pskSecret = PSKSecret.derive(suite: suite, psks: psks)
        let newSecrets = EpochSecrets(suite: suite, initSecret: secrets.initSecret, commitSecret: commitSecret, pskSecret: pskSecret,
                                      groupContext: newContext.tlsEncoded)
        let tag = newSecrets.confirmationTag(confirmedTranscriptHash: confirmed)
        authenticated.auth.confirmationTag = tag

        // The commit is protected with the old epoch's keys; this state, still of the old epoch, has spent
        // the one a PrivateMessage took.
        let message = try protect(authenticated, random: random)
        let stateWithCommitKeySpent: Group? = wireFormat == .privateMessage ? self : nil

        var groupInfo = GroupInfo(groupContext: newContext,
                                  extensions: [MLSExtension(type: ExtensionType.ratchetTree, data: newTree.encoded),
                                               MLSExtension(type: ExtensionType.externalPub, data: newSecrets.externalKeyPair.publicKey.withVarintLength)],
                                  confirmationTag: tag, signer: myLeaf)
        groupInfo.sign(suite: suite, key: signatureKey)

        var welcome: Welcome?
        if !newMembers.isEmpty {
            var recipients: [(keyPackage: KeyPackage, secrets: GroupSecrets)] = []
            for (leaf, keyPackage) in newMembers {
                let ancestor = TreeMath.commonAncestor(2 * leaf, 2 * myLeaf)
                recipients.append((keyPackage, GroupSecrets(joinerSecret: newSecrets.joinerSecret, pathSecret: pathSecrets[ancestor], psks: pskIDs)))
            }
            welcome = try Welcome.seal(suite: suite, groupInfo: groupInfo, welcomeSecret: newSecrets.welcomeSecret, recipients: recipients)
        }

        var newReInit = reInit
        for case .reInit(let proposal) in proposals { newReInit = proposal }
        enterEpoch(newContext, tree: newTree, keys: keys, secrets: newSecrets, confirmed: confirmed, tag: tag, reInit: newReInit)
        return CommitOutput(message: message, welcome: welcome, groupInfo: groupInfo, stateWithCommitKeySpent: stateWithCommitKeySpent)
    }

    /// Encrypts application data as a PrivateMessage of the current epoch. `padding` zero bytes hide the
    /// length up to that many.
    public mutating func encrypt(_ data: [UInt8], authenticatedData: [UInt8] = [], padding: Int = 0,
                                 random: any RandomSource = SystemRandom()) throws(MLSError) -> MLSMessage {
        guard isActive else { throw .protocolViolation("this member was removed from the group") }
        guard reInit == nil else { throw .protocolViolation("the group was reinitialised") }
        guard let signatureKey else { throw .protocolViolation("this member has no signing key") }
        let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .member(leafIndex: myLeaf),
                                    authenticatedData: authenticatedData, body: .application(data))
        let authenticated = AuthenticatedContent.sign(wireFormat: .privateMessage, content: content, suite: suite, key: signatureKey, context: context)
        var tree = secretTree
        let message = try PrivateMessage.protect(authenticated, suite: suite, secretTree: &tree, senderDataSecret: secrets.senderDataSecret,
                                                 padding: padding, random: random)
        secretTree = tree
        return MLSMessage(body: .privateMessage(message))
    }
}

extension Array where Element == UInt8 {
    /// `opaque<V>` of these bytes (an HPKEPublicKey inside an extension's data).
    var withVarintLength: [UInt8] {
        var writer = TLSWriter()
        writer.writeOpaque(self)
        return writer.bytes
    }
}
