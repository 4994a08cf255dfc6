import ParleyCrypto

/// Reinitialisation (RFC 9420 §11.2): after a commit with a ReInit, a member founds the group the ReInit
/// describes, tied to the old one by the old group's resumption PSK (usage `reinit`) in the new group's
/// first commit and its Welcome; a joiner checks that tie before it takes the Welcome.
extension Group {
    /// Creates the group that `old`'s ReInit describes (its id, version, suite and GroupContext extensions)
    /// with this member alone, and commits the Adds of `keyPackages` (the old group's members, in their new
    /// KeyPackages) together with the PreSharedKey of `old`'s resumption secret of its last epoch, usage
    /// `reinit`. The Welcome goes to the new members, who join with `Group.join(…, resuming: old)`.
    public static func reinitialise(_ old: Group, leaf: LeafNode, encryptionPrivateKey: SecretBytes, signatureKey: SignaturePrivateKey,
                                    adding keyPackages: [KeyPackage],
                                    random: any RandomSource = SystemRandom()) throws(MLSError) -> (group: Group, commit: CommitOutput) {
        guard let reInit = old.reInit else { throw .protocolViolation("the group to resume was not reinitialised") }
        guard reInit.version == mls10 else { throw .protocolViolation("a ReInit to an unsupported protocol version") }
        guard let secret = old.resumptionPSK(epoch: old.epoch) else { throw .protocolViolation("no resumption PSK for the ReInit's epoch") }
        let suite = try CipherSuite(id: reInit.cipherSuite)
        var group = try create(suite: suite, groupID: reInit.groupID, leaf: leaf, encryptionPrivateKey: encryptionPrivateKey,
                               signatureKey: signatureKey, extensions: reInit.extensions,
                               credentialValidator: old.credentialValidator, random: random)
        let link = PreSharedKeyID(kind: .resumption(usage: .reinit, groupID: old.context.groupID, epoch: old.epoch),
                                  nonce: random.bytes(suite.hashLength))
        group.importedResumptionPSKs[link.kind] = secret
        let commit = try group.commit(adding: keyPackages, preSharedKeys: [link], random: random)
        group.importedResumptionPSKs[link.kind] = nil
        return (group, commit)
    }
}

/// What a Welcome's reinit or branch PSK binds the new group to (RFC 9420 §12.4.3.1): at most one such
/// PSK; the new group starts at epoch 1; and for a reinit, the group the joiner resumes was closed by a
/// ReInit whose parameters the new GroupContext carries, and the PSK is that group's of its last epoch.
struct ResumptionLink {
    let usage: PreSharedKeyID.ResumptionUsage?
    let reInit: Proposal.ReInit?

    init(psks: [PreSharedKeyID], resuming old: Group?) throws(MLSError) {
        let links = psks.filter {
            if case .resumption(let usage, _, _) = $0.kind { usage != .application } else { false }
        }
        guard links.count <= 1 else { throw .protocolViolation("a Welcome with more than one reinit or branch PSK") }
        if let old {
            guard let reInit = old.reInit else { throw .protocolViolation("the group to resume was not reinitialised") }
            guard let link = links.first, case .resumption(.reinit, let groupID, let epoch) = link.kind,
                  groupID == old.context.groupID, epoch == old.epoch else {
                throw .protocolViolation("the Welcome does not carry the resumed group's reinit PSK")
            }
            usage = .reinit
            self.reInit = reInit
        } else if let link = links.first, case .resumption(let linkUsage, _, _) = link.kind {
            usage = linkUsage
            reInit = nil
        } else {
            usage = nil
            reInit = nil
        }
    }

    func check(_ context: GroupContext) throws(MLSError) {
        guard usage != nil else { return }
        guard context.epoch == 1 else { throw .protocolViolation("a resumed or branched group's Welcome is not for its epoch 1") }
        if let reInit {
            guard context.groupID == reInit.groupID, context.version == reInit.version, context.cipherSuite == reInit.cipherSuite,
                  context.extensions == reInit.extensions else {
                throw .protocolViolation("the new group does not match the ReInit")
            }
        }
    }
}
