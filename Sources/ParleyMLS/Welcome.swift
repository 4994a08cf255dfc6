import ParleyCrypto

/// GroupInfo (RFC 9420 §12.4.3): the public state of an epoch, signed by the member who made it.
public struct GroupInfo: TLSCodable, Hashable, Sendable {
    public var groupContext: GroupContext
    public var extensions: [MLSExtension]
    public var confirmationTag: [UInt8]
    public var signer: UInt32
    public var signature: [UInt8]

    public init(groupContext: GroupContext, extensions: [MLSExtension], confirmationTag: [UInt8], signer: UInt32, signature: [UInt8] = []) {
        self.groupContext = groupContext
        self.extensions = extensions
        self.confirmationTag = confirmationTag
        self.signer = signer
        self.signature = signature
    }

    /// GroupInfoTBS: everything but the signature.
    public var toBeSigned: [UInt8] {
        var writer = TLSWriter()
        encodeContent(to: &writer)
        return writer.bytes
    }

    private func encodeContent(to writer: inout TLSWriter) {
        groupContext.encode(to: &writer)
        writer.writeVector(extensions)
        writer.writeOpaque(confirmationTag)
        writer.writeUInt32(signer)
    }

    public mutating func sign(suite: CipherSuite, key: SignaturePrivateKey) {
        signature = suite.signWithLabel(key, label: "GroupInfoTBS", content: toBeSigned)
    }

    public func verifySignature(suite: CipherSuite, publicKey: [UInt8]) -> Bool {
        suite.verifyWithLabel(publicKey: publicKey, label: "GroupInfoTBS", content: toBeSigned, signature: signature)
    }

    public func encode(to writer: inout TLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        groupContext = try reader.read()
        extensions = try reader.readVector(of: MLSExtension.self)
        confirmationTag = try reader.readOpaque()
        signer = try reader.readUInt32()
        signature = try reader.readOpaque()
    }
}

/// GroupSecrets: what the Welcome encrypts to each new member's init key.
public struct GroupSecrets: TLSCodable, Sendable {
    public var joinerSecret: SecretBytes
    public var pathSecret: SecretBytes?
    public var psks: [PreSharedKeyID]

    public init(joinerSecret: SecretBytes, pathSecret: SecretBytes?, psks: [PreSharedKeyID]) {
        self.joinerSecret = joinerSecret
        self.pathSecret = pathSecret
        self.psks = psks
    }

    public func encode(to writer: inout TLSWriter) {
        joinerSecret.withUnsafeBytes { writer.writeOpaque($0) }
        writer.writeOptional(pathSecret) { w, secret in secret.withUnsafeBytes { w.writeOpaque($0) } }
        writer.writeVector(psks)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        var joiner = try reader.readOpaque()
        defer { wipe(&joiner) }
        joinerSecret = SecretBytes(joiner)
        pathSecret = try reader.readOptional { (r: inout TLSReader) throws(MLSError) -> SecretBytes in
            var bytes = try r.readOpaque()
            defer { wipe(&bytes) }
            return SecretBytes(bytes)
        }
        psks = try reader.readVector(of: PreSharedKeyID.self)
    }
}

/// struct { KeyPackageRef new_member; HPKECiphertext encrypted_group_secrets; } EncryptedGroupSecrets
public struct EncryptedGroupSecrets: TLSCodable, Hashable, Sendable {
    public var newMember: [UInt8]
    public var encryptedGroupSecrets: HPKECiphertext

    public init(newMember: [UInt8], encryptedGroupSecrets: HPKECiphertext) {
        self.newMember = newMember
        self.encryptedGroupSecrets = encryptedGroupSecrets
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(newMember)
        encryptedGroupSecrets.encode(to: &writer)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        newMember = try reader.readOpaque()
        encryptedGroupSecrets = try reader.read()
    }
}

/// Welcome (§12.4.3.1).
public struct Welcome: TLSCodable, Hashable, Sendable {
    public var cipherSuite: UInt16
    public var secrets: [EncryptedGroupSecrets]
    public var encryptedGroupInfo: [UInt8]

    public init(cipherSuite: UInt16, secrets: [EncryptedGroupSecrets], encryptedGroupInfo: [UInt8]) {
        self.cipherSuite = cipherSuite
        self.secrets = secrets
        self.encryptedGroupInfo = encryptedGroupInfo
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(cipherSuite)
        writer.writeVector(secrets)
        writer.writeOpaque(encryptedGroupInfo)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        cipherSuite = try reader.readUInt16()
        secrets = try reader.readVector(of: EncryptedGroupSecrets.self)
        encryptedGroupInfo = try reader.readOpaque()
    }

    /// Encrypts `groupInfo` under the welcome secret and the group secrets to each new member's init key.
    public static func seal(suite: CipherSuite, groupInfo: GroupInfo, welcomeSecret: SecretBytes,
                            recipients: [(keyPackage: KeyPackage, secrets: GroupSecrets)]) throws(MLSError) -> Welcome {
        let (key, nonce) = EpochSecrets.welcomeKeyAndNonce(suite: suite, welcomeSecret: welcomeSecret)
        let encryptedGroupInfo = try suite.seal(key: key, nonce: nonce, aad: [], plaintext: groupInfo.tlsEncoded)
        var secrets: [EncryptedGroupSecrets] = []
        for recipient in recipients {
            var plaintext = recipient.secrets.tlsEncoded
            defer { wipe(&plaintext) }
            let sealed = try suite.encryptWithLabel(publicKey: recipient.keyPackage.initKey, label: "Welcome",
                                                    context: encryptedGroupInfo, plaintext: plaintext)
            secrets.append(EncryptedGroupSecrets(newMember: recipient.keyPackage.reference(suite: suite), encryptedGroupSecrets: sealed))
        }
        return Welcome(cipherSuite: suite.id, secrets: secrets, encryptedGroupInfo: encryptedGroupInfo)
    }

    /// The GroupSecrets meant for the KeyPackage `reference`, opened with its init private key.
    public func openGroupSecrets(suite: CipherSuite, keyPackageReference reference: [UInt8], initPrivateKey: SecretBytes) throws(MLSError) -> GroupSecrets {
        guard cipherSuite == suite.id else { throw .protocolViolation("Welcome for another cipher suite") }
        guard let mine = secrets.first(where: { constantTimeEquals($0.newMember, reference) }) else {
            throw .protocolViolation("Welcome has no secrets for this KeyPackage")
        }
        var plaintext = try suite.decryptWithLabel(privateKey: initPrivateKey, label: "Welcome", context: encryptedGroupInfo, mine.encryptedGroupSecrets)
        defer { wipe(&plaintext) }
        return try GroupSecrets(tlsEncoded: plaintext)
    }

    /// Decrypts the GroupInfo with the welcome secret (derived from the joiner secret and the PSK secret).
    public func openGroupInfo(suite: CipherSuite, welcomeSecret: SecretBytes) throws(MLSError) -> GroupInfo {
        let (key, nonce) = EpochSecrets.welcomeKeyAndNonce(suite: suite, welcomeSecret: welcomeSecret)
        return try GroupInfo(tlsEncoded: try suite.open(key: key, nonce: nonce, aad: [], ciphertext: encryptedGroupInfo))
    }
}

extension EpochSecrets {
    /// welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret), "welcome"): a new member needs it
    /// before it knows the GroupContext.
    public static func welcomeSecret(suite: CipherSuite, joinerSecret: SecretBytes, pskSecret: SecretBytes?) -> SecretBytes {
        suite.deriveSecret(secret: suite.extract(salt: joinerSecret, ikm: pskSecret ?? suite.zeroSecret), label: "welcome")
    }
}

/// MLSMessage: the versioned envelope of every MLS message on the wire (§6).
public struct MLSMessage: TLSCodable, Hashable, Sendable {
    public enum Body: Hashable, Sendable {
        case publicMessage(PublicMessage)
        case privateMessage(PrivateMessage)
        case welcome(Welcome)
        case groupInfo(GroupInfo)
        case keyPackage(KeyPackage)

        public var wireFormat: WireFormat {
            switch self {
            case .publicMessage: .publicMessage
            case .privateMessage: .privateMessage
            case .welcome: .welcome
            case .groupInfo: .groupInfo
            case .keyPackage: .keyPackage
            }
        }
    }

    public var version: ProtocolVersion
    public var body: Body

    public init(version: ProtocolVersion = mls10, body: Body) {
        self.version = version
        self.body = body
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(version)
        writer.writeUInt16(body.wireFormat.rawValue)
        switch body {
        case .publicMessage(let m): m.encode(to: &writer)
        case .privateMessage(let m): m.encode(to: &writer)
        case .welcome(let m): m.encode(to: &writer)
        case .groupInfo(let m): m.encode(to: &writer)
        case .keyPackage(let m): m.encode(to: &writer)
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        version = try reader.readUInt16()
        guard version == mls10 else { throw .invalidValue("protocol version") }
        switch try readWireFormat(&reader) {
        case .publicMessage: body = .publicMessage(try reader.read())
        case .privateMessage: body = .privateMessage(try reader.read())
        case .welcome: body = .welcome(try reader.read())
        case .groupInfo: body = .groupInfo(try reader.read())
        case .keyPackage: body = .keyPackage(try reader.read())
        }
    }
}

extension GroupInfo {
    /// The group's tree as a joiner must accept it, by a Welcome or an external commit (RFC 9420 §12.4.3.1):
    /// the GroupInfo's one `ratchet_tree` extension, else the tree given out of band; signed by its signer's
    /// leaf, valid for the GroupContext's tree hash, and every member's credential accepted.
    func verifiedTree(suite: CipherSuite, outOfBand ratchetTree: RatchetTree?,
                      credentialValidator: CredentialValidator) throws(MLSError) -> RatchetTree {
        var tree: RatchetTree
        let treeExtensions = extensions.filter { $0.extensionType == ExtensionType.ratchetTree }
        guard treeExtensions.count <= 1 else { throw .protocolViolation("two ratchet_tree extensions") }
        guard extensions.hasUniqueTypes, groupContext.extensions.hasUniqueTypes else { throw .protocolViolation(TreeViolation.repeatedExtension) }
        if let ext = treeExtensions.first {
            tree = try RatchetTree(suite: suite, encoded: ext.data)
        } else if let ratchetTree {
            tree = ratchetTree
        } else {
            throw .protocolViolation("no ratchet tree for the GroupInfo")
        }
        guard let signerLeaf = tree.leaf(signer), verifySignature(suite: suite, publicKey: signerLeaf.signatureKey) else {
            throw .invalidSignature
        }
        try tree.validate(groupID: groupContext.groupID, treeHash: groupContext.treeHash)
        // §7.3 for every leaf of the tree: the group's required capabilities and GroupContext extensions
        // are listed, and every credential type in use is supported by every member.
        let leaves = tree.occupiedLeaves.compactMap { tree.leaf($0) }
        let credentialTypes = Set(leaves.map(\.credential.credentialType))
        for node in leaves {
            guard node.supportsExtensions(groupContext.extensions) else {
                throw .protocolViolation(TreeViolation.requiredCapabilities)
            }
            guard credentialTypes.isSubset(of: node.capabilities.credentials) else {
                throw .protocolViolation(TreeViolation.credentialTypeSupport)
            }
        }
        for node in leaves {
            guard credentialValidator(node.credential, node.signatureKey) else { throw .credentialRejected }
        }
        try Group.checkExternalSenders(in: groupContext.extensions, credentialValidator)
        return tree
    }
}
