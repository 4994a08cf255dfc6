import ParleyCrypto

/// What a delivery service needs from a member so that another can rejoin (RFC 9420 §12.4.3.2), and what a
/// member needs to tell a commit it cannot apply from one that is not genuine.
extension Group {
    /// A signed GroupInfo of the current epoch with the `ratchet_tree` and `external_pub` extensions, as a
    /// commit's: what a member that lost its state rejoins from. An external joiner, whose join produces no
    /// GroupInfo, leaves this one for the next.
    public func currentGroupInfo() throws(MLSError) -> GroupInfo {
        guard let signatureKey else { throw .protocolViolation("this member has no signing key") }
        var info = GroupInfo(groupContext: context,
                             extensions: [MLSExtension(type: ExtensionType.ratchetTree, data: tree.encoded),
                                          MLSExtension(type: ExtensionType.externalPub, data: secrets.externalKeyPair.publicKey.withVarintLength)],
                             confirmationTag: secrets.confirmationTag(confirmedTranscriptHash: context.confirmedTranscriptHash), signer: myLeaf)
        info.sign(suite: suite, key: signatureKey)
        return info
    }

    /// Whether `message` is a commit of this epoch that a member (or an external joiner, with the leaf its
    /// path brings) really signed, protected with this epoch's keys (its membership tag, or its handshake
    /// key): one this member should be able to apply. A commit that passes this and still fails to apply
    /// points at this member's state, not at the sender. Nothing of the state changes.
    public func isAuthenticCommit(_ message: MLSMessage) -> Bool {
        let authenticated: AuthenticatedContent
        switch message.body {
        case .publicMessage(let m):
            guard m.content.groupID == context.groupID, m.content.epoch == context.epoch,
                  let opened = try? m.unprotect(suite: suite, membershipKey: secrets.membershipKey, context: context) else { return false }
            authenticated = opened
        case .privateMessage(let m):
            // Opened with a copy of the secret tree: checking spends no key of the state.
            var keys = secretTree
            guard m.groupID == context.groupID, m.epoch == context.epoch, m.contentType == .commit,
                  let opened = try? m.unprotect(suite: suite, secretTree: &keys, senderDataSecret: secrets.senderDataSecret) else { return false }
            authenticated = opened
        default:
            return false
        }
        guard case .commit(let commit) = authenticated.content.body else { return false }
        let key: [UInt8]
        switch authenticated.content.sender {
        case .member(let leaf):
            guard let node = tree.leaf(leaf) else { return false }
            key = node.signatureKey
        case .newMemberCommit:
            guard let path = commit.path else { return false }
            key = path.leafNode.signatureKey
        default:
            return false
        }
        return authenticated.verifySignature(suite: suite, publicKey: key, context: context)
    }
}

extension GroupInfo {
    /// The tree the GroupInfo carries in its `ratchet_tree` extension, checked as a joiner checks it (the
    /// signature by its signer's leaf, every leaf's credential by `credentialValidator`).
    public func carriedTree(credentialValidator: CredentialValidator) throws(MLSError) -> RatchetTree {
        let suite = try CipherSuite(id: groupContext.cipherSuite)
        return try verifiedTree(suite: suite, outOfBand: nil, credentialValidator: credentialValidator)
    }
}
