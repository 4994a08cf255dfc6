import ParleyCrypto

/// Joining a group without a Welcome: an external commit made from the group's current GroupInfo
/// (RFC 9420 §12.4.3.2). The joiner adds itself at the leftmost free leaf, sends an ExternalInit whose
/// HPKE export replaces the init secret, and a path that gives the new epoch its commit secret.
extension Group {
    public struct ExternalJoin: Sendable {
        /// The joiner's state in the new epoch.
        public var group: Group
        /// The commit, for the group's members (a PublicMessage from a `new_member_commit` sender).
        public var message: MLSMessage
    }

    /// - Parameters:
    ///   - groupInfo: the group's current GroupInfo; its signature, tree and `external_pub` are checked.
    ///   - ratchetTree: the tree, when the GroupInfo does not carry the `ratchet_tree` extension.
    ///   - leaf: the joiner's leaf content (credential, capabilities, signature key); its encryption key,
    ///     source and signature are replaced by the path's.
    ///   - removing: the joiner's own old leaf, when it rejoins to resynchronise.
    public static func joinByExternalCommit(groupInfo: GroupInfo, ratchetTree: RatchetTree? = nil, leaf: LeafNode,
                                            signatureKey: SignaturePrivateKey, removing: UInt32? = nil,
                                            credentialValidator: @escaping CredentialValidator = CredentialValidation.anyBasicCredential,
                                            random: any RandomSource = SystemRandom()) throws(MLSError) -> ExternalJoin {
        let context = groupInfo.groupContext
        let suite = try CipherSuite(id: context.cipherSuite)
        guard context.version == mls10 else { throw .protocolViolation("GroupInfo for another version") }
        guard leaf.signatureKey == signatureKey.publicKey else { throw .invalidKey }
        guard try leaf.supportsGroup(suite: suite, extensions: context.extensions) else {
            throw .protocolViolation("this client does not support the group's extensions")
        }
        var tree = try groupInfo.verifiedTree(suite: suite, outOfBand: ratchetTree, credentialValidator: credentialValidator)
        guard let pubExtension = groupInfo.extensions.first(where: { $0.extensionType == ExtensionType.externalPub }) else {
            throw .protocolViolation("the GroupInfo has no external_pub")
        }
        var pubReader = TLSReader(pubExtension.data)
        let externalPub = try pubReader.readOpaque()
        try pubReader.finish()
        let (kemOutput, initSecret) = try suite.externalInit(publicKey: externalPub)

        var proposals: [Proposal] = [.externalInit(kemOutput: kemOutput)]
        var newTree = tree
        if let removing {
            guard tree.leaf(removing)?.credential == leaf.credential else { throw .protocolViolation("a resync removes a leaf of another client") }
            proposals.append(.remove(leafIndex: removing))
            try newTree.removeLeaf(removing)
        }
        let me = newTree.addLeaf(leaf)
        let newEpoch = context.epoch + 1
        let provisional = { (treeHash: [UInt8]) -> [UInt8] in
            GroupContext(cipherSuite: context.cipherSuite, groupID: context.groupID, epoch: newEpoch, treeHash: treeHash,
                         confirmedTranscriptHash: context.confirmedTranscriptHash, extensions: context.extensions).tlsEncoded
        }
        let created = try TreeKEM.createUpdatePath(tree: newTree, leafIndex: me, leafContent: leaf, signatureKey: signatureKey,
                                                   groupID: context.groupID, groupContext: provisional, random: random)
        newTree = created.tree

        let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .newMemberCommit,
                                    body: .commit(Commit(proposals: proposals.map { .proposal($0) }, path: created.path)))
        var authenticated = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: suite, key: signatureKey, context: context)
        let interim = TranscriptHash.interim(suite: suite, confirmed: context.confirmedTranscriptHash, confirmationTag: groupInfo.confirmationTag)
        let confirmed = TranscriptHash.confirmed(suite: suite, interim: interim, wireFormat: WireFormat.publicMessage.rawValue,
                                                 content: content, signature: authenticated.auth.signature)
        let newContext = GroupContext(cipherSuite: suite.id, groupID: context.groupID, epoch: newEpoch, treeHash: newTree.treeHash(),
                                      confirmedTranscriptHash: confirmed, extensions: context.extensions)
        let secrets = EpochSecrets(suite: suite, initSecret: initSecret, commitSecret: created.commitSecret, pskSecret: nil,
                                   groupContext: newContext.tlsEncoded)
        let tag = secrets.confirmationTag(confirmedTranscriptHash: confirmed)
        authenticated.auth.confirmationTag = tag
        let message = MLSMessage(body: .publicMessage(try PublicMessage(protecting: authenticated, suite: suite, membershipKey: nil, context: context)))

        var group = Group(suite: suite, context: newContext, tree: newTree, myLeaf: me, signatureKey: signatureKey,
                          interimTranscriptHash: TranscriptHash.interim(suite: suite, confirmed: confirmed, confirmationTag: tag),
                          privateKeys: created.privateKeys, secrets: secrets,
                          secretTree: SecretTree(suite: suite, encryptionSecret: secrets.encryptionSecret, leafCount: newTree.leafCount),
                          externalPSKs: [:], credentialValidator: credentialValidator)
        group.resumptionPSKs[newEpoch] = secrets.resumptionPSK
        return ExternalJoin(group: group, message: message)
    }
}
