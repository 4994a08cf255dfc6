import Foundation
import ParleyCrypto

/// A member's state in one epoch of a group, and the transitions to the next (RFC 9420 §§11–12).
///
/// A value: `process` works on a copy and replaces `self` only once an incoming message has fully
/// validated, so a message that fails any check leaves the state byte for byte as it was.
public struct Group: Sendable {
    public let suite: CipherSuite
    public internal(set) var context: GroupContext
    public internal(set) var tree: RatchetTree
    public internal(set) var myLeaf: UInt32
    public internal(set) var interimTranscriptHash: [UInt8]
    /// False once a commit removed this member; nothing more can be processed.
    public internal(set) var isActive = true

    /// This member's signing key; a client that only reads (as the passive-client vectors) may have none.
    let signatureKey: SignaturePrivateKey?
    var privateKeys: TreePrivateKeys
    var secrets: EpochSecrets
    var secretTree: SecretTree
    var pendingProposals: [PendingProposal] = []
    /// Set once a commit with a ReInit proposal is applied: the group is closed (nothing more is sent or
    /// processed in it) and its members move to the group the ReInit describes (RFC 9420 §11.2).
    public internal(set) var reInit: Proposal.ReInit?
    /// Resumption PSKs of other groups (a ReInit's or a branch's predecessor), for this group's PSK
    /// proposals and Welcome. Not serialised: needed only until the first commit that uses them.
    public var importedResumptionPSKs: [PreSharedKeyID.Kind: SecretBytes] = [:]
    /// Private keys of this member's own Update proposals not yet committed, by the new leaf's public key.
    var pendingUpdateKeys: [[UInt8]: SecretBytes] = [:]
    /// Resumption PSKs of recent epochs of this group, by epoch (at most `retainedResumptionPSKs`).
    var resumptionPSKs: [UInt64: SecretBytes] = [:]
    /// The last epochs left, oldest first, for their late application messages (PastEpochs.swift).
    var pastEpochs: [PastEpoch] = []
    /// External PSKs the application shares with the group, by PSK id.
    public var externalPSKs: [[UInt8]: SecretBytes]

    public static let retainedResumptionPSKs = 8

    /// Decides whether a leaf's credential may join or stay in the group: called for every leaf of a tree
    /// joined from a Welcome, every Add's KeyPackage, every Update and every committer's new leaf. Parley
    /// binds a basic credential to an account address and device id through the account's signed device
    /// list (PROTOCOL.md §16.2). Not part of the serialised state: a restored group is given it again.
    public var credentialValidator: CredentialValidator
    /// Seconds since the Unix epoch, against which an Add's KeyPackage lifetime is checked; nil skips the
    /// check (a client replaying recorded messages, as the interop vectors do). Not serialised.
    public var clock: (@Sendable () -> UInt64)? = { UInt64(Date().timeIntervalSince1970) }

    struct PendingProposal: Sendable {
        let reference: [UInt8]
        let proposal: Proposal
        let sender: Sender
    }

    public var epoch: UInt64 { context.epoch }
    public var epochAuthenticator: SecretBytes { secrets.epochAuthenticator }

    /// MLS-Exporter of the current epoch.
    public func export(label: String, context exportContext: [UInt8], length: Int) -> SecretBytes {
        secrets.export(label: Array(label.utf8), context: exportContext, length: length)
    }

    // MARK: Joining from a Welcome (§12.4.3.1)

    /// Joins with the Welcome meant for `keyPackage`. The tree comes from the GroupInfo's `ratchet_tree`
    /// extension, or from `ratchetTree` when the group sends it another way.
    public static func join(welcome: Welcome, keyPackage: KeyPackage, initPrivateKey: SecretBytes, encryptionPrivateKey: SecretBytes,
                            signatureKey: SignaturePrivateKey? = nil, ratchetTree: RatchetTree? = nil,
                            externalPSKs: [[UInt8]: SecretBytes] = [:], resumptionPSKs imported: [PreSharedKeyID.Kind: SecretBytes] = [:],
                            resuming reinitialised: Group? = nil,
                            credentialValidator: @escaping CredentialValidator = CredentialValidation.anyBasicCredential) throws(MLSError) -> Group {
        let suite = try CipherSuite(id: welcome.cipherSuite)
        guard keyPackage.cipherSuite == suite.id else { throw .protocolViolation("Welcome for another cipher suite") }
        let groupSecrets = try welcome.openGroupSecrets(suite: suite, keyPackageReference: keyPackage.reference(suite: suite),
                                                        initPrivateKey: initPrivateKey)
        guard groupSecrets.joinerSecret.count == suite.hashLength else { throw .invalidValue("joiner secret length") }
        let link = try ResumptionLink(psks: groupSecrets.psks, resuming: reinitialised)
        var psks: [(id: PreSharedKeyID, secret: SecretBytes)] = []
        for id in groupSecrets.psks {
            let secret: SecretBytes?
            switch id.kind {
            case .external(let pskID): secret = externalPSKs[pskID]
            case .resumption(.application, _, _): secret = nil
            case .resumption(.reinit, _, let epoch): secret = reinitialised?.resumptionPSK(epoch: epoch)
            case .resumption(.branch, _, _): secret = imported[id.kind]
            }
            guard let secret else { throw .protocolViolation("the Welcome needs a PSK this client does not have") }
            psks.append((id, secret))
        }
        let pskSecret = PSKSecret.derive(suite: suite, psks: psks)
        let welcomeSecret = EpochSecrets.welcomeSecret(suite: suite, joinerSecret: groupSecrets.joinerSecret, pskSecret: pskSecret)
        let groupInfo = try welcome.openGroupInfo(suite: suite, welcomeSecret: welcomeSecret)
        let context = groupInfo.groupContext
        guard context.version == mls10, context.cipherSuite == suite.id else { throw .protocolViolation("GroupInfo for another version or suite") }
        try link.check(context)
        guard try keyPackage.leafNode.supportsGroup(suite: suite, extensions: context.extensions) else {
            throw .protocolViolation("this client does not support the group's extensions")
        }

        var tree = try groupInfo.verifiedTree(suite: suite, outOfBand: ratchetTree, credentialValidator: credentialValidator)
        guard let me = tree.occupiedLeaves.first(where: { tree.leaf($0) == keyPackage.leafNode }) else {
            throw .protocolViolation("the tree does not hold this KeyPackage's leaf")
        }

        var keys = TreePrivateKeys(leafIndex: me, leafPrivateKey: encryptionPrivateKey)
        if let pathSecret = groupSecrets.pathSecret {
            let ancestor = TreeMath.commonAncestor(2 * me, 2 * groupInfo.signer)
            let path = tree.filteredDirectPath(of: groupInfo.signer).map(\.node)
            guard path.contains(ancestor) else { throw .protocolViolation("the path secret's node is not on the signer's path") }
            keys.setPathSecret(pathSecret, at: ancestor, path: path, suite: suite)
        }
        guard keys.isConsistent(with: tree) else { throw .protocolViolation("a private key does not match the tree") }

        let secrets = EpochSecrets(suite: suite, joinerSecret: groupSecrets.joinerSecret, pskSecret: pskSecret, groupContext: context.tlsEncoded)
        guard constantTimeEquals(secrets.confirmationTag(confirmedTranscriptHash: context.confirmedTranscriptHash), groupInfo.confirmationTag) else {
            throw .protocolViolation("the GroupInfo's confirmation tag does not verify")
        }
        if let signatureKey, signatureKey.publicKey != keyPackage.leafNode.signatureKey { throw .invalidKey }
        var group = Group(suite: suite, context: context, tree: tree, myLeaf: me, signatureKey: signatureKey,
                          interimTranscriptHash: TranscriptHash.interim(suite: suite, confirmed: context.confirmedTranscriptHash,
                                                                        confirmationTag: groupInfo.confirmationTag),
                          privateKeys: keys, secrets: secrets,
                          secretTree: SecretTree(suite: suite, encryptionSecret: secrets.encryptionSecret, leafCount: tree.leafCount),
                          externalPSKs: externalPSKs, credentialValidator: credentialValidator)
        group.resumptionPSKs[context.epoch] = secrets.resumptionPSK
        return group
    }

    init(suite: CipherSuite, context: GroupContext, tree: RatchetTree, myLeaf: UInt32, signatureKey: SignaturePrivateKey?, interimTranscriptHash: [UInt8],
                 privateKeys: TreePrivateKeys, secrets: EpochSecrets, secretTree: SecretTree, externalPSKs: [[UInt8]: SecretBytes],
                 credentialValidator: @escaping CredentialValidator) {
        self.suite = suite
        self.context = context
        self.tree = tree
        self.myLeaf = myLeaf
        self.signatureKey = signatureKey
        self.interimTranscriptHash = interimTranscriptHash
        self.privateKeys = privateKeys
        self.secrets = secrets
        self.secretTree = secretTree
        self.externalPSKs = externalPSKs
        self.credentialValidator = credentialValidator
    }

    // MARK: Processing

    public enum Processed: Sendable, Equatable {
        case application(data: [UInt8], sender: UInt32)
        /// A proposal was cached for a later commit.
        case proposal(Proposal, sender: Sender)
        /// A commit moved the group to a new epoch.
        case commit(epoch: UInt64)
        /// A commit removed this member.
        case removed
    }

    /// Processes one message of the current epoch. On any error the state is unchanged.
    public mutating func process(_ message: MLSMessage) throws(MLSError) -> Processed {
        var next = self
        let result = try next.apply(message)
        self = next
        return result
    }

    private mutating func apply(_ message: MLSMessage) throws(MLSError) -> Processed {
        guard isActive else { throw .protocolViolation("this member was removed from the group") }
        guard reInit == nil else { throw .protocolViolation("the group was reinitialised") }
        let authenticated: AuthenticatedContent
        switch message.body {
        case .publicMessage(let m):
            try checkGroupAndEpoch(m.content.groupID, m.content.epoch)
            if case .application = m.content.body { throw .protocolViolation("application data in a PublicMessage") }
            authenticated = try m.unprotect(suite: suite, membershipKey: secrets.membershipKey, context: context)
        case .privateMessage(let m):
            if m.groupID == context.groupID, m.epoch < context.epoch { return try openLate(m) }
            try checkGroupAndEpoch(m.groupID, m.epoch)
            authenticated = try m.unprotect(suite: suite, secretTree: &secretTree, senderDataSecret: secrets.senderDataSecret)
        default:
            throw .protocolViolation("not a group message")
        }
        let content = authenticated.content
        guard authenticated.verifySignature(suite: suite, publicKey: try senderSignatureKey(of: content), context: context) else {
            throw .invalidSignature
        }
        switch content.body {
        case .application(let data):
            guard case .member(let leaf) = content.sender else { throw .protocolViolation("application data from a non-member") }
            return .application(data: data, sender: leaf)
        case .proposal(let proposal):
            try checkProposalSender(proposal, content.sender)
            pendingProposals.append(PendingProposal(reference: suite.makeProposalRef(authenticated.tlsEncoded), proposal: proposal, sender: content.sender))
            return .proposal(proposal, sender: content.sender)
        case .commit(let commit):
            return try applyCommit(commit, authenticated)
        }
    }

    private func checkGroupAndEpoch(_ groupID: [UInt8], _ epoch: UInt64) throws(MLSError) {
        guard groupID == context.groupID else { throw .protocolViolation("message for another group") }
        guard epoch == context.epoch else { throw .protocolViolation("message for another epoch") }
    }

    /// The key a sender signs with: a member's leaf, an external sender's entry, or the leaf it brings.
    private func senderSignatureKey(of content: FramedContent) throws(MLSError) -> [UInt8] {
        switch content.sender {
        case .member(let leaf):
            guard let node = tree.leaf(leaf) else { throw .protocolViolation("sender leaf is blank") }
            return node.signatureKey
        case .external(let index):
            let senders = try externalSenders()
            guard Int(index) < senders.count else { throw .protocolViolation("unknown external sender") }
            return senders[Int(index)].signatureKey
        case .newMemberProposal:
            guard case .proposal(.add(let keyPackage)) = content.body else { throw .protocolViolation("a new member may only propose its own Add") }
            return keyPackage.leafNode.signatureKey
        case .newMemberCommit:
            guard case .commit(let commit) = content.body, let path = commit.path else {
                throw .protocolViolation("an external commit needs a path")
            }
            return path.leafNode.signatureKey
        }
    }

    func externalSenders() throws(MLSError) -> [ExternalSender] {
        try Self.externalSenders(in: context.extensions)
    }

    static func externalSenders(in extensions: [MLSExtension]) throws(MLSError) -> [ExternalSender] {
        guard let ext = extensions.first(where: { $0.extensionType == ExtensionType.externalSenders }) else { return [] }
        var reader = TLSReader(ext.data)
        let senders = try reader.readVector(of: ExternalSender.self)
        try reader.finish()
        return senders
    }

    /// RFC 9420 §5.3.1: the credentials of `external_senders`, when a group's extensions name them (a
    /// GroupContextExtensions proposal, a GroupInfo joined), are validated like a leaf's.
    static func checkExternalSenders(in extensions: [MLSExtension], _ credentialValidator: CredentialValidator) throws(MLSError) {
        for sender in try externalSenders(in: extensions) {
            guard credentialValidator(sender.credential, sender.signatureKey) else { throw .credentialRejected }
        }
    }

    private func checkProposalSender(_ proposal: Proposal, _ sender: Sender) throws(MLSError) {
        switch (proposal, sender) {
        case (.update, .member), (.add, _), (.remove, .member), (.remove, .external), (.preSharedKey, .member), (.preSharedKey, .external),
             (.reInit, .member), (.reInit, .external), (.groupContextExtensions, .member), (.groupContextExtensions, .external):
            return
        default:
            throw .protocolViolation("proposal type not allowed from this sender")
        }
    }

    // MARK: Commits (§12.4.2)

    private mutating func applyCommit(_ commit: Commit, _ authenticated: AuthenticatedContent) throws(MLSError) -> Processed {
        let sender = authenticated.content.sender
        let isExternal: Bool
        switch sender {
        case .member(let leaf):
            guard leaf != myLeaf else { throw .protocolViolation("a member does not process its own commit from the wire") }
            isExternal = false
        case .newMemberCommit: isExternal = true
        default: throw .protocolViolation("commit from a sender that cannot commit")
        }

        var proposals: [(proposal: Proposal, sender: Sender)] = []
        for item in commit.proposals {
            switch item {
            case .proposal(let proposal):
                proposals.append((proposal, sender))
            case .reference(let reference):
                guard !isExternal else { throw .protocolViolation("an external commit refers to a proposal") }
                guard let pending = pendingProposals.first(where: { constantTimeEquals($0.reference, reference) }) else {
                    throw .protocolViolation("commit refers to an unknown proposal")
                }
                proposals.append((pending.proposal, pending.sender))
            }
        }
        try validate(proposals, committer: sender, isExternal: isExternal)
        let needsPath = proposals.isEmpty || proposals.contains {
            switch $0.proposal {
            case .update, .remove, .externalInit, .groupContextExtensions: true
            default: false
            }
        }
        if needsPath && commit.path == nil { throw .protocolViolation("this commit needs a path") }
        if isExternal, let path = commit.path {
            // §12.2: a resync's Remove is of the joiner's own old leaf, whose place the path's leaf takes
            // as an Update's would: the same client (credential) with a new encryption key.
            for case (.remove(let index), _) in proposals {
                guard let old = tree.leaf(index), old.credential == path.leafNode.credential,
                      old.encryptionKey != path.leafNode.encryptionKey else {
                    throw .protocolViolation("an external commit removes a leaf that is not the joiner's own")
                }
            }
        }

        // Apply in the order of §12.3: extensions, updates, removes, adds; then PSKs and external init.
        var newTree = tree
        var extensions = context.extensions
        var pskIDs: [PreSharedKeyID] = []
        var externalKEMOutput: [UInt8]?
        var newMembers = Set<UInt32>()
        var removedMe = false
        for case (.groupContextExtensions(let new), _) in proposals { extensions = new }
        var ownUpdateKey: SecretBytes?
        for case (.update(let leaf), .member(let index)) in proposals {
            if index == myLeaf {
                guard let key = pendingUpdateKeys[leaf.encryptionKey] else {
                    throw .protocolViolation("an Update of this member's leaf it did not send")
                }
                ownUpdateKey = key
            }
            try newTree.updateLeaf(index, with: leaf)
        }
        for case (.remove(let index), _) in proposals {
            if index == myLeaf { removedMe = true }
            try newTree.removeLeaf(index)
        }
        for case (.add(let keyPackage), _) in proposals { newMembers.insert(newTree.addLeaf(keyPackage.leafNode)) }
        for case (.preSharedKey(let id), _) in proposals { pskIDs.append(id) }
        for case (.externalInit(let kemOutput), _) in proposals { externalKEMOutput = kemOutput }
        var newReInit: Proposal.ReInit?
        for case (.reInit(let reInit), _) in proposals { newReInit = reInit }

        var committerLeaf: UInt32
        if case .member(let leaf) = sender {
            committerLeaf = leaf
        } else {
            // An external committer takes the leftmost free leaf, as an Add would; its path then fills it.
            var placeholder = commit.path!.leafNode
            placeholder.encryptionKey = []
            committerLeaf = newTree.addLeaf(placeholder)
        }
        // The committer's new leaf is checked before anything else of the path, so that a member this
        // commit removes (which cannot decrypt the path) still refuses a leaf the application does not
        // accept: an external "resync" that names a member's credential removes nobody unless its leaf
        // passes the credential check.
        if let path = commit.path {
            guard credentialValidator(path.leafNode.credential, path.leafNode.signatureKey) else { throw .credentialRejected }
            guard try path.leafNode.supportsGroup(suite: suite, extensions: extensions) else {
                throw .protocolViolation("a new leaf does not support the group's capabilities")
            }
            try newTree.validateLeafNode(path.leafNode, use: .commit(leafIndex: committerLeaf), groupID: context.groupID,
                                         requiredCapabilities: try RequiredCapabilities.find(in: extensions), now: clock?())
        }
        if removedMe {
            isActive = false
            return .removed
        }

        let newEpoch = context.epoch + 1
        let provisional = { (treeHash: [UInt8]) -> [UInt8] in
            GroupContext(cipherSuite: self.suite.id, groupID: self.context.groupID, epoch: newEpoch, treeHash: treeHash,
                         confirmedTranscriptHash: self.context.confirmedTranscriptHash, extensions: extensions).tlsEncoded
        }
        var keys = privateKeys
        if let ownUpdateKey { keys.set(ownUpdateKey, for: 2 * myLeaf) }
        var commitSecret = suite.zeroSecret
        if let path = commit.path {
            let applied = try TreeKEM.applyUpdatePath(path, from: committerLeaf, tree: newTree, privateKeys: keys,
                                                      groupID: context.groupID, newMembers: newMembers, groupContext: provisional)
            newTree = applied.tree
            keys = applied.privateKeys
            commitSecret = applied.commitSecret
        } else {
            keys.forgetStaleKeys(tree: newTree)
        }

        let confirmed = TranscriptHash.confirmed(suite: suite, interim: interimTranscriptHash, wireFormat: authenticated.wireFormat.rawValue,
                                                 content: authenticated.content, signature: authenticated.auth.signature)
        let newContext = GroupContext(cipherSuite: suite.id, groupID: context.groupID, epoch: newEpoch, treeHash: newTree.treeHash(),
                                      confirmedTranscriptHash: confirmed, extensions: extensions)
        var initSecret = secrets.initSecret
        if let externalKEMOutput {
            initSecret = try suite.externalInitSecret(kemOutput: externalKEMOutput, privateKey: secrets.externalKeyPair.privateKey)
        }
        var psks: [(id: PreSharedKeyID, secret: SecretBytes)] = []
        for id in pskIDs { psks.append((id, try resolve(id))) }
        let newSecrets = EpochSecrets(suite: suite, initSecret: initSecret, commitSecret: commitSecret,
                                      pskSecret: PSKSecret.derive(suite: suite, psks: psks), groupContext: newContext.tlsEncoded)
        guard let tag = authenticated.auth.confirmationTag,
              constantTimeEquals(tag, newSecrets.confirmationTag(confirmedTranscriptHash: confirmed)) else {
            throw .protocolViolation("the commit's confirmation tag does not verify")
        }

        enterEpoch(newContext, tree: newTree, keys: keys, secrets: newSecrets, confirmed: confirmed, tag: tag, reInit: newReInit)
        return .commit(epoch: newEpoch)
    }

    /// Moves the group to the epoch a validated commit made, whether this member sent it or received it:
    /// the only place the state is replaced, so nothing of a refused commit is ever kept.
    mutating func enterEpoch(_ newContext: GroupContext, tree newTree: RatchetTree, keys: TreePrivateKeys, secrets newSecrets: EpochSecrets,
                             confirmed: [UInt8], tag: [UInt8], reInit newReInit: Proposal.ReInit?) {
        pastEpochs = Array((pastEpochs + [pastEpoch()]).suffix(Self.retainedPastEpochs))
        context = newContext
        tree = newTree
        privateKeys = keys
        secrets = newSecrets
        interimTranscriptHash = TranscriptHash.interim(suite: suite, confirmed: confirmed, confirmationTag: tag)
        secretTree = SecretTree(suite: suite, encryptionSecret: newSecrets.encryptionSecret, leafCount: newTree.leafCount)
        pendingProposals = []
        pendingUpdateKeys = [:]
        reInit = newReInit
        resumptionPSKs[newContext.epoch] = newSecrets.resumptionPSK
        if resumptionPSKs.count > Self.retainedResumptionPSKs, let oldest = resumptionPSKs.keys.min() { resumptionPSKs[oldest] = nil }
    }

    func resolve(_ id: PreSharedKeyID) throws(MLSError) -> SecretBytes {
        switch id.kind {
        case .external(let pskID):
            guard let secret = externalPSKs[pskID] else { throw .protocolViolation("unknown external PSK") }
            return secret
        case .resumption(let usage, let groupID, let epoch):
            if usage == .application, groupID == context.groupID, let secret = resumptionPSKs[epoch] { return secret }
            guard usage != .application, let secret = importedResumptionPSKs[id.kind] else { throw .protocolViolation("unknown resumption PSK") }
            return secret
        }
    }

    /// The resumption PSK of a recent epoch of this group, to carry into the group a ReInit or a branch
    /// makes (as an imported resumption PSK there).
    public func resumptionPSK(epoch: UInt64) -> SecretBytes? { resumptionPSKs[epoch] }

    /// The proposal list rules of §12.2 and the per-proposal checks of §12.1.
    func validate(_ proposals: [(proposal: Proposal, sender: Sender)], committer: Sender, isExternal: Bool) throws(MLSError) {
        var extensionsAfter = context.extensions
        for case (.groupContextExtensions(let new), _) in proposals { extensionsAfter = new }
        let required = try RequiredCapabilities.find(in: extensionsAfter)
        let now = clock?()
        // New leaves are judged against the tree without the leaves this list removes: a client may be
        // re-added (same signature key) by the commit that removes its old leaf (§12.2).
        var currentTree = tree
        if proposals.contains(where: { if case .add = $0.proposal { true } else { false } }) {
            for case (.remove(let index), _) in proposals where currentTree.leaf(index) != nil { try currentTree.removeLeaf(index) }
        }
        var touched = Set<UInt32>()
        var pskIDs = Set<PreSharedKeyID>()
        var addedSignatureKeys = Set<[UInt8]>()
        var counts: [UInt16: Int] = [:]
        for (proposal, sender) in proposals {
            counts[proposal.type, default: 0] += 1
            switch proposal {
            case .add(let keyPackage):
                try validateKeyPackage(keyPackage)
                guard credentialValidator(keyPackage.leafNode.credential, keyPackage.leafNode.signatureKey) else { throw .credentialRejected }
                guard try keyPackage.leafNode.supportsGroup(suite: suite, extensions: extensionsAfter) else {
                    throw .protocolViolation("a new leaf does not support the group's capabilities")
                }
                try currentTree.validateLeafNode(keyPackage.leafNode, use: .keyPackage, groupID: context.groupID,
                                                 requiredCapabilities: required, now: now)
                guard addedSignatureKeys.insert(keyPackage.leafNode.signatureKey).inserted,
                      !currentTree.occupiedLeaves.contains(where: { currentTree.leaf($0)?.signatureKey == keyPackage.leafNode.signatureKey })
                else { throw .protocolViolation("an Add for a signature key already in the group") }
            case .update(let leaf):
                guard case .member(let index) = sender, sender != committer else { throw .protocolViolation("an Update from the committer or a non-member") }
                guard case .update = leaf.source,
                      leaf.hasValidSignature(suite: suite, context: LeafNodeSignatureContext(groupID: context.groupID, leafIndex: index))
                else { throw .protocolViolation("an Update's leaf node is not valid") }
                guard touched.insert(index).inserted else { throw .protocolViolation("two Updates or Removes for one leaf") }
                guard credentialValidator(leaf.credential, leaf.signatureKey) else { throw .credentialRejected }
                guard try leaf.supportsGroup(suite: suite, extensions: extensionsAfter) else {
                    throw .protocolViolation("a new leaf does not support the group's capabilities")
                }
                try currentTree.validateLeafNode(leaf, use: .update(leafIndex: index), groupID: context.groupID,
                                                 requiredCapabilities: required, now: now)
            case .remove(let index):
                guard index < tree.leafCount, tree.leaf(index) != nil else { throw .protocolViolation("a Remove of a blank leaf") }
                guard committer != .member(leafIndex: index) else { throw .protocolViolation("a Remove of the committer") }
                guard touched.insert(index).inserted else { throw .protocolViolation("two Updates or Removes for one leaf") }
            case .preSharedKey(let id):
                guard id.nonce.count == suite.hashLength else { throw .protocolViolation("a PSK nonce of the wrong length") }
                // §§8.4, 11.2, 11.3: reinit and branch PSKs only set up a new group, in its first commit.
                if case .resumption(let usage, _, _) = id.kind, usage != .application, context.epoch != 0 {
                    throw .protocolViolation("a reinit or branch PSK outside a new group's first commit")
                }
                guard pskIDs.insert(id).inserted else { throw .protocolViolation("the same PSK twice") }
            case .reInit(let reInit):
                guard proposals.count == 1 else { throw .protocolViolation("a ReInit with other proposals") }
                guard reInit.version >= context.version else { throw .protocolViolation("a ReInit to an older protocol version") }
            case .externalInit:
                guard isExternal else { throw .protocolViolation("an ExternalInit in a member's commit") }
            case .groupContextExtensions(let new):
                guard new.hasUniqueTypes else { throw .protocolViolation(TreeViolation.repeatedExtension) }
                try Self.checkExternalSenders(in: new, credentialValidator)
            }
        }
        if counts[7, default: 0] > 1 { throw .protocolViolation("two GroupContextExtensions proposals") }
        if counts[7, default: 0] == 1 {
            // Every member that stays must support the new extensions and required capabilities: leaves
            // removed by this list are not asked, and added or updated leaves were checked above against
            // the new extensions already (§12.1.7).
            let replaced = Set(proposals.compactMap { item -> UInt32? in
                switch (item.proposal, item.sender) {
                case (.remove(let index), _), (.update, .member(let index)): index
                default: nil
                }
            })
            for index in tree.occupiedLeaves where !replaced.contains(index) {
                guard let member = tree.leaf(index), try member.supportsGroup(suite: suite, extensions: extensionsAfter) else {
                    throw .protocolViolation("a member does not support the new group extensions")
                }
            }
        }
        if isExternal {
            guard counts[6, default: 0] == 1 else { throw .protocolViolation("an external commit needs exactly one ExternalInit") }
            guard counts[3, default: 0] <= 1 else { throw .protocolViolation("an external commit removes more than one leaf") }
            for (proposal, _) in proposals {
                switch proposal {
                case .externalInit, .remove, .preSharedKey: continue
                default: throw .protocolViolation("an external commit with a proposal it may not carry")
                }
            }
        }
    }

    /// §10.1: the KeyPackage's version and suite are the group's, its signature and its leaf's verify, the
    /// leaf comes from a KeyPackage, and its init key differs from the leaf's encryption key.
    private func validateKeyPackage(_ keyPackage: KeyPackage) throws(MLSError) {
        guard keyPackage.version == mls10, keyPackage.cipherSuite == suite.id else { throw .protocolViolation("a KeyPackage for another version or suite") }
        guard keyPackage.verifySignature(suite: suite) else { throw .invalidSignature }
        guard case .keyPackage = keyPackage.leafNode.source, keyPackage.leafNode.hasValidSignature(suite: suite, context: nil) else {
            throw .protocolViolation("a KeyPackage's leaf node is not valid")
        }
        guard keyPackage.initKey != keyPackage.leafNode.encryptionKey else { throw .protocolViolation("a KeyPackage's init key is its leaf's key") }
        guard keyPackage.extensions.hasUniqueTypes else { throw .protocolViolation(TreeViolation.repeatedExtension) }
        if let clock, case .keyPackage(let lifetime) = keyPackage.leafNode.source, !lifetime.contains(clock()) {
            throw .protocolViolation("a KeyPackage outside its lifetime")
        }
    }
}

/// Whether a credential, presented with the leaf's signature key, is acceptable.
public typealias CredentialValidator = @Sendable (_ credential: Credential, _ signatureKey: [UInt8]) -> Bool

public enum CredentialValidation {
    /// Any basic credential (X.509 is refused): for tests and the interop vectors. Parley's engine passes
    /// its device-list check instead.
    public static let anyBasicCredential: CredentialValidator = { credential, _ in
        if case .basic = credential { return true }
        return false
    }
}

/// struct { SignaturePublicKey signature_key; Credential credential; } ExternalSender (§12.1.8.1).
public struct ExternalSender: TLSCodable, Hashable, Sendable {
    public var signatureKey: [UInt8]
    public var credential: Credential

    public init(signatureKey: [UInt8], credential: Credential) {
        self.signatureKey = signatureKey
        self.credential = credential
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(signatureKey)
        credential.encode(to: &writer)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        signatureKey = try reader.readOpaque()
        credential = try reader.read()
    }
}

extension Group {
    /// Leaves whose member proposed its own removal in this epoch (it is leaving), not yet committed.
    public var leavingLeaves: [UInt32] {
        pendingProposals.compactMap { pending in
            if case .remove(let leaf) = pending.proposal, case .member(let sender) = pending.sender, sender == leaf { leaf } else { nil }
        }
    }
}
