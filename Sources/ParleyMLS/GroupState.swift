import ParleyCrypto

/// A member's group state as bytes, for the encrypted store (which keeps it atomically with the messages
/// it has processed). The first byte is the format version; a reader refuses versions it does not know.
///
///   uint8 format = 1; uint16 cipher_suite; GroupContext context; opaque ratchet_tree<V>; uint32 my_leaf;
///   opaque interim_transcript_hash<V>; uint8 active; optional<opaque signature_seed<V>>;
///   { uint32 node; opaque private_key<V>; } tree_private_keys<V>;
///   opaque epoch_secrets<V>[11]; SecretTree secret_tree; { opaque ref<V>; Proposal; Sender; } pending<V>;
///   { uint64 epoch; opaque psk<V>; } resumption_psks<V>; { opaque id<V>; opaque psk<V>; } external_psks<V>;
///   { opaque public_key<V>; opaque private_key<V>; } pending_own_updates<V>; optional<ReInit> reinit;
///   { GroupContext context; SecretTree secret_tree; opaque sender_data_secret<V>;
///     { uint32 leaf; opaque signature_key<V>; Credential credential; } senders<V>; } past_epochs<V>;
///
/// Format 2 added past_epochs (at most `retainedPastEpochs`); a format-1 state reads as having none.
///
/// Maps are written in increasing key order, so two equal states have equal bytes (what the negative tests
/// compare). The bytes hold every secret of the epoch: they go to disk only encrypted.
extension Group {
    public static let stateFormatVersion: UInt8 = 2

    public func serialized() -> SecretBytes {
        var w = TLSWriter()
        w.writeUInt8(Self.stateFormatVersion)
        w.writeUInt16(suite.id)
        context.encode(to: &w)
        w.writeOpaque(tree.encoded)
        w.writeUInt32(myLeaf)
        w.writeOpaque(interimTranscriptHash)
        w.writeUInt8(isActive ? 1 : 0)
        w.writeOptional(signatureKey) { w, key in writeSecret(key.seed, to: &w) }
        w.writeVector { w in
            for node in privateKeys.keys.keys.sorted() {
                w.writeUInt32(node)
                writeSecret(privateKeys.keys[node]!, to: &w)
            }
        }
        for secret in secrets.stored { writeSecret(secret, to: &w) }
        secretTree.encode(to: &w)
        w.writeVector { w in
            for pending in pendingProposals {
                w.writeOpaque(pending.reference)
                pending.proposal.encode(to: &w)
                pending.sender.encode(to: &w)
            }
        }
        w.writeVector { w in
            for epoch in resumptionPSKs.keys.sorted() {
                w.writeUInt64(epoch)
                writeSecret(resumptionPSKs[epoch]!, to: &w)
            }
        }
        w.writeVector { w in
            for id in externalPSKs.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                w.writeOpaque(id)
                writeSecret(externalPSKs[id]!, to: &w)
            }
        }
        w.writeVector { w in
            for publicKey in pendingUpdateKeys.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                w.writeOpaque(publicKey)
                writeSecret(pendingUpdateKeys[publicKey]!, to: &w)
            }
        }
        w.writeOptional(reInit)
        Self.encode(pastEpochs, to: &w)
        var bytes = w.bytes
        defer { wipe(&bytes) }
        return SecretBytes(bytes)
    }

    /// Restores a state written by `serialized()`. The tree and the private keys are checked against each
    /// other; anything malformed is refused.
    public init(serialized state: SecretBytes,
                credentialValidator: @escaping CredentialValidator = CredentialValidation.anyBasicCredential) throws(MLSError) {
        var bytes = state.unprotectedBytes
        defer { wipe(&bytes) }
        var r = TLSReader(bytes)
        let format = try r.readUInt8()
        guard format == 1 || format == Self.stateFormatVersion else { throw .invalidValue("group state format version") }
        let suite = try CipherSuite(id: r.readUInt16())
        let context = try GroupContext(from: &r)
        guard context.cipherSuite == suite.id else { throw .invalidValue("group state suite") }
        let tree = try RatchetTree(suite: suite, encoded: r.readOpaque())
        let myLeaf = try r.readUInt32()
        // Its node, 2 × my_leaf, must be a UInt32 (a removed member's leaf may lie past its truncated tree).
        guard myLeaf <= UInt32.max / 2 else { throw .invalidValue("group state leaf index") }
        let interim = try r.readOpaque()
        let active = try r.readUInt8() == 1
        let signatureKey = try r.readOptional { (r: inout TLSReader) throws(MLSError) in try SignaturePrivateKey(seed: readSecret(&r)) }
        let nodeKeys = try r.readVector { (r: inout TLSReader) throws(MLSError) in (try r.readUInt32(), try readSecret(&r)) }
        guard let leafKey = nodeKeys.first(where: { $0.0 == 2 * myLeaf })?.1 else { throw .invalidValue("group state leaf key") }
        var keys = TreePrivateKeys(leafIndex: myLeaf, leafPrivateKey: leafKey)
        for (node, key) in nodeKeys { keys.set(key, for: node) }
        var stored: [SecretBytes] = []
        for _ in 0..<11 { stored.append(try readSecret(&r)) }
        let secrets = try EpochSecrets(suite: suite, stored: stored)
        let secretTree = try SecretTree(suite: suite, from: &r)
        let pending = try r.readVector { (r: inout TLSReader) throws(MLSError) in
            PendingProposal(reference: try r.readOpaque(), proposal: try r.read(), sender: try r.read())
        }
        let resumption = try r.readVector { (r: inout TLSReader) throws(MLSError) in (try r.readUInt64(), try readSecret(&r)) }
        let external = try r.readVector { (r: inout TLSReader) throws(MLSError) in (try r.readOpaque(), try readSecret(&r)) }
        let updateKeys = try r.readVector { (r: inout TLSReader) throws(MLSError) in (try r.readOpaque(), try readSecret(&r)) }
        let reInit = try r.readOptional(of: Proposal.ReInit.self)
        let past = format == 1 ? [] : try Self.readPastEpochs(suite: suite, from: &r)
        try r.finish()
        guard !active || keys.isConsistent(with: tree) else { throw .invalidValue("group state keys do not match its tree") }
        if let signatureKey, active, tree.leaf(myLeaf)?.signatureKey != signatureKey.publicKey {
            throw .invalidValue("group state signature key does not match its leaf")
        }

        self.init(suite: suite, context: context, tree: tree, myLeaf: myLeaf, signatureKey: signatureKey, interimTranscriptHash: interim,
                  privateKeys: keys, secrets: secrets, secretTree: secretTree,
                  externalPSKs: Dictionary(external, uniquingKeysWith: { first, _ in first }), credentialValidator: credentialValidator)
        isActive = active
        pendingProposals = pending
        resumptionPSKs = Dictionary(resumption, uniquingKeysWith: { first, _ in first })
        pendingUpdateKeys = Dictionary(updateKeys, uniquingKeysWith: { first, _ in first })
        self.reInit = reInit
        pastEpochs = past
    }
}
