import ParleyCrypto

/// A member's own messages coming back to it. A delivery service that queues every message for every
/// member device, the sender's included (so that the recipient list does not name the sender), hands the
/// sender its own copy; the sender cannot process it (its keys of that generation are used, a member does
/// not apply its own commit from the wire) and must not record it as a failure either.
///
/// The test is on the state alone, without a record of what was sent: the copy names this member's leaf
/// in its (encrypted) sender data or its framing, and
/// * a PrivateMessage: names a generation of this leaf's ratchet that is already used. Only this member
///   advances its own sending ratchet, so that generation was one it sent with. A message that merely
///   claims this leaf with a generation not yet used is no copy: it goes on to `process`, which refuses it
///   (a signature only this member can make), as before. A commit so recognised, of the current epoch, is
///   one this member made whose new epoch its state has not entered (in flight, or its answer lost);
/// * a proposal of the current epoch: authenticated (membership tag, this member's signature) and cached
///   already, by reference, when this member sent it;
/// * a commit of the current epoch in a PublicMessage, authenticated: one this member made that the
///   delivery service ordered while its state has not moved on (the commit in flight, or the answer to it
///   lost) — the caller knows which;
/// * a handshake message of an epoch this member has left: refused as of another epoch anyway.
/// Anything else is no copy and is processed (and refused, or not) as any message.
extension Group {
    public enum OwnCopy: Sendable, Equatable {
        /// Sent by this member and already part of its state: dropped unread.
        case sent
        /// This member's commit of the current epoch, authentic, which its state has not applied.
        case unappliedCommit
    }

    /// Whether this member sent a handshake message (a commit or a proposal as a PrivateMessage) in its
    /// current epoch: one of its commits of this epoch may be the one the group moved on with.
    public var sentHandshakeThisEpoch: Bool {
        secretTree.hasUsed(leaf: myLeaf, kind: .handshake, generation: 0)
    }

    public func ownCopy(_ message: MLSMessage) -> OwnCopy? {
        switch message.body {
        case .privateMessage(let m):
            guard m.groupID == context.groupID else { return nil }
            let keys: (tree: SecretTree, senderData: SecretBytes)
            if m.epoch == context.epoch {
                keys = (secretTree, secrets.senderDataSecret)
            } else if let past = pastEpochs.first(where: { $0.context.epoch == m.epoch }) {
                keys = (past.secretTree, past.senderDataSecret)
            } else {
                return nil
            }
            guard let sender = try? m.senderData(suite: suite, senderDataSecret: keys.senderData), sender.leaf == myLeaf else { return nil }
            if m.contentType != .application, m.epoch < context.epoch { return .sent }
            guard keys.tree.hasUsed(leaf: myLeaf, kind: m.contentType == .application ? .application : .handshake, generation: sender.generation)
            else { return nil }
            // A commit of the current epoch at a handshake generation this member used is one it made: its
            // key was spent in the state saved before sending (`CommitOutput.stateWithCommitKeySpent`), so it
            // is not opened again here.
            return m.contentType == .commit ? .unappliedCommit : .sent
        case .publicMessage(let m):
            guard m.content.groupID == context.groupID, m.content.sender == .member(leafIndex: myLeaf) else { return nil }
            if m.content.epoch < context.epoch { return .sent }
            guard m.content.epoch == context.epoch, let own = tree.leaf(myLeaf),
                  let authenticated = try? m.unprotect(suite: suite, membershipKey: secrets.membershipKey, context: context),
                  authenticated.verifySignature(suite: suite, publicKey: own.signatureKey, context: context) else { return nil }
            switch m.content.body {
            case .proposal:
                let reference = suite.makeProposalRef(authenticated.tlsEncoded)
                return pendingProposals.contains { $0.sender == .member(leafIndex: myLeaf) && constantTimeEquals($0.reference, reference) } ? .sent : nil
            case .commit:
                return .unappliedCommit
            case .application:
                return nil
            }
        default:
            return nil
        }
    }
}

extension PrivateMessage {
    /// The sender's leaf and generation, from the encrypted sender data (§6.3.2).
    func senderData(suite: CipherSuite, senderDataSecret: SecretBytes) throws(MLSError) -> (leaf: UInt32, generation: UInt32) {
        let keys = SenderDataKeys.derive(suite: suite, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
        let plain = try suite.open(key: keys.key, nonce: keys.nonce, aad: Self.senderDataAAD(groupID: groupID, epoch: epoch, type: contentType),
                                   ciphertext: encryptedSenderData)
        var reader = TLSReader(plain)
        let leaf = try reader.readUInt32(), generation = try reader.readUInt32()
        _ = try reader.readBytes(4)
        try reader.finish()
        return (leaf, generation)
    }
}
