import ParleyCrypto

/// Application messages of an epoch this member has left (RFC 9420 §14 lets a client keep a past epoch's
/// secrets for messages that arrive late). A member that commits before it has read every application
/// message sent in the epoch its commit ends would otherwise never open them: the delivery service orders
/// them before the commit, but this member's own commit does not wait for its mailbox. Kept: the secret
/// tree, sender-data secret and context of the last `retainedPastEpochs` epochs, and each member leaf's
/// signature key and credential (the sender of a late message may have been removed by the commit).
/// Only application messages are opened in a past epoch; its keys are used once each, as in the current one.
struct PastEpoch: Sendable {
    struct Sender: Sendable, Equatable {
        let signatureKey: [UInt8]
        let credential: Credential
    }

    let context: GroupContext
    var secretTree: SecretTree
    let senderDataSecret: SecretBytes
    let senders: [UInt32: Sender]
}

extension Group {
    /// Two: a late message survives this member's own commit and one more.
    public static let retainedPastEpochs = 2

    /// What of the current epoch stays once the group moves on.
    func pastEpoch() -> PastEpoch {
        var senders: [UInt32: PastEpoch.Sender] = [:]
        for leaf in tree.occupiedLeaves {
            if let node = tree.leaf(leaf) { senders[leaf] = PastEpoch.Sender(signatureKey: node.signatureKey, credential: node.credential) }
        }
        return PastEpoch(context: context, secretTree: secretTree, senderDataSecret: secrets.senderDataSecret, senders: senders)
    }

    /// Opens an application message of a past epoch this member keeps; anything else of a past epoch is
    /// refused as it was before (a message for another epoch).
    mutating func openLate(_ message: PrivateMessage) throws(MLSError) -> Processed {
        guard message.contentType == .application,
              let index = pastEpochs.firstIndex(where: { $0.context.epoch == message.epoch }) else {
            throw .protocolViolation("message for another epoch")
        }
        var past = pastEpochs[index]
        let authenticated = try message.unprotect(suite: suite, secretTree: &past.secretTree, senderDataSecret: past.senderDataSecret)
        let content = authenticated.content
        guard case .application(let data) = content.body, case .member(let leaf) = content.sender, let sender = past.senders[leaf] else {
            throw .protocolViolation("a late message that is not a member's application data")
        }
        guard authenticated.verifySignature(suite: suite, publicKey: sender.signatureKey, context: past.context) else { throw .invalidSignature }
        pastEpochs[index] = past
        return .application(data: data, sender: leaf)
    }

    /// The credential of the member at `leaf` in `epoch` (the current one or one this member keeps): who
    /// sent an application message of that epoch.
    public func credential(ofLeaf leaf: UInt32, inEpoch epoch: UInt64) -> Credential? {
        if epoch == context.epoch { return tree.leaf(leaf)?.credential }
        return pastEpochs.first { $0.context.epoch == epoch }?.senders[leaf]?.credential
    }

    static func encode(_ past: [PastEpoch], to w: inout TLSWriter) {
        w.writeVector { w in
            for epoch in past {
                epoch.context.encode(to: &w)
                epoch.secretTree.encode(to: &w)
                writeSecret(epoch.senderDataSecret, to: &w)
                w.writeVector { w in
                    for leaf in epoch.senders.keys.sorted() {
                        w.writeUInt32(leaf)
                        w.writeOpaque(epoch.senders[leaf]!.signatureKey)
                        epoch.senders[leaf]!.credential.encode(to: &w)
                    }
                }
            }
        }
    }

    static func readPastEpochs(suite: CipherSuite, from r: inout TLSReader) throws(MLSError) -> [PastEpoch] {
        let past = try r.readVector { (r: inout TLSReader) throws(MLSError) -> PastEpoch in
            let context = try GroupContext(from: &r)
            let secretTree = try SecretTree(suite: suite, from: &r)
            let senderData = try readSecret(&r)
            let senders = try r.readVector { (r: inout TLSReader) throws(MLSError) in
                (try r.readUInt32(), PastEpoch.Sender(signatureKey: try r.readOpaque(), credential: try r.read()))
            }
            return PastEpoch(context: context, secretTree: secretTree, senderDataSecret: senderData,
                             senders: Dictionary(senders, uniquingKeysWith: { first, _ in first }))
        }
        guard past.count <= retainedPastEpochs else { throw .invalidValue("group state keeps too many past epochs") }
        return past
    }
}
