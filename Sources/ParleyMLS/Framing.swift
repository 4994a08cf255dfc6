import ParleyCrypto

/// Message framing (RFC 9420 §6): the content of a message, how it is signed, and its two protected forms.

public enum WireFormat: UInt16, Sendable {
    case publicMessage = 1
    case privateMessage = 2
    case welcome = 3
    case groupInfo = 4
    case keyPackage = 5
}

public enum ContentType: UInt8, Sendable {
    case application = 1
    case proposal = 2
    case commit = 3
}

/// Who sent a message: a member (by leaf), an external sender (by index in `external_senders`), or a
/// client joining by proposal or by external commit.
public enum Sender: TLSCodable, Hashable, Sendable {
    case member(leafIndex: UInt32)
    case external(senderIndex: UInt32)
    case newMemberProposal
    case newMemberCommit

    public func encode(to writer: inout TLSWriter) {
        switch self {
        case .member(let index):
            writer.writeUInt8(1)
            writer.writeUInt32(index)
        case .external(let index):
            writer.writeUInt8(2)
            writer.writeUInt32(index)
        case .newMemberProposal: writer.writeUInt8(3)
        case .newMemberCommit: writer.writeUInt8(4)
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt8() {
        case 1: self = .member(leafIndex: try reader.readUInt32())
        case 2: self = .external(senderIndex: try reader.readUInt32())
        case 3: self = .newMemberProposal
        case 4: self = .newMemberCommit
        default: throw .invalidValue("sender type")
        }
    }

    /// Whether FramedContentTBS includes the GroupContext (members and external committers know it).
    var signsGroupContext: Bool {
        switch self {
        case .member, .newMemberCommit: true
        case .external, .newMemberProposal: false
        }
    }
}

/// The body of a message.
public enum ContentBody: Hashable, Sendable {
    case application([UInt8])
    case proposal(Proposal)
    case commit(Commit)

    public var contentType: ContentType {
        switch self {
        case .application: .application
        case .proposal: .proposal
        case .commit: .commit
        }
    }

    func encode(to writer: inout TLSWriter) {
        switch self {
        case .application(let data): writer.writeOpaque(data)
        case .proposal(let proposal): proposal.encode(to: &writer)
        case .commit(let commit): commit.encode(to: &writer)
        }
    }

    static func decode(type: ContentType, from reader: inout TLSReader) throws(MLSError) -> ContentBody {
        switch type {
        case .application: .application(try reader.readOpaque())
        case .proposal: .proposal(try reader.read())
        case .commit: .commit(try reader.read())
        }
    }
}

func readContentType(_ reader: inout TLSReader) throws(MLSError) -> ContentType {
    guard let type = ContentType(rawValue: try reader.readUInt8()) else { throw .invalidValue("content type") }
    return type
}

func readWireFormat(_ reader: inout TLSReader) throws(MLSError) -> WireFormat {
    guard let format = WireFormat(rawValue: try reader.readUInt16()) else { throw .invalidValue("wire format") }
    return format
}

/// FramedContent (§6).
public struct FramedContent: TLSCodable, Hashable, Sendable {
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var sender: Sender
    public var authenticatedData: [UInt8]
    public var body: ContentBody

    public init(groupID: [UInt8], epoch: UInt64, sender: Sender, authenticatedData: [UInt8] = [], body: ContentBody) {
        self.groupID = groupID
        self.epoch = epoch
        self.sender = sender
        self.authenticatedData = authenticatedData
        self.body = body
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        sender.encode(to: &writer)
        writer.writeOpaque(authenticatedData)
        writer.writeUInt8(body.contentType.rawValue)
        body.encode(to: &writer)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        sender = try reader.read()
        authenticatedData = try reader.readOpaque()
        body = try ContentBody.decode(type: try readContentType(&reader), from: &reader)
    }
}

/// FramedContentAuthData: the signature, and for a Commit its confirmation tag.
public struct FramedContentAuthData: Hashable, Sendable {
    public var signature: [UInt8]
    public var confirmationTag: [UInt8]?

    public init(signature: [UInt8], confirmationTag: [UInt8]? = nil) {
        self.signature = signature
        self.confirmationTag = confirmationTag
    }

    func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(signature)
        if let confirmationTag { writer.writeOpaque(confirmationTag) }
    }

    static func decode(contentType: ContentType, from reader: inout TLSReader) throws(MLSError) -> FramedContentAuthData {
        let signature = try reader.readOpaque()
        let tag = contentType == .commit ? try reader.readOpaque() : nil
        return FramedContentAuthData(signature: signature, confirmationTag: tag)
    }
}

/// AuthenticatedContent: what was signed, with its signature (and confirmation tag), whichever way it
/// travelled. Proposal references are hashes of its encoding.
public struct AuthenticatedContent: TLSCodable, Hashable, Sendable {
    public var wireFormat: WireFormat
    public var content: FramedContent
    public var auth: FramedContentAuthData

    public init(wireFormat: WireFormat, content: FramedContent, auth: FramedContentAuthData) {
        self.wireFormat = wireFormat
        self.content = content
        self.auth = auth
    }

    /// Signs `content` for sending as `wireFormat`. `context` is required for members and external
    /// committers (their signature covers it). A Commit's confirmation tag is set afterwards, once the new
    /// epoch's confirmation key is known.
    public static func sign(wireFormat: WireFormat, content: FramedContent, suite: CipherSuite, key: SignaturePrivateKey,
                            context: GroupContext?) -> AuthenticatedContent {
        let tbs = toBeSigned(wireFormat: wireFormat, content: content, context: context)
        return AuthenticatedContent(wireFormat: wireFormat, content: content,
                                    auth: FramedContentAuthData(signature: suite.signWithLabel(key, label: "FramedContentTBS", content: tbs)))
    }

    /// FramedContentTBS (§6.1).
    public static func toBeSigned(wireFormat: WireFormat, content: FramedContent, context: GroupContext?) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeUInt16(mls10)
        writer.writeUInt16(wireFormat.rawValue)
        content.encode(to: &writer)
        if content.sender.signsGroupContext, let context { context.encode(to: &writer) }
        return writer.bytes
    }

    /// Checks the signature with the sender's signature key. Also refuses a Commit without a tag, and
    /// anything else with one.
    public func verifySignature(suite: CipherSuite, publicKey: [UInt8], context: GroupContext?) -> Bool {
        guard (content.body.contentType == .commit) == (auth.confirmationTag != nil) else { return false }
        if content.sender.signsGroupContext && context == nil { return false }
        let tbs = Self.toBeSigned(wireFormat: wireFormat, content: content, context: context)
        return suite.verifyWithLabel(publicKey: publicKey, label: "FramedContentTBS", content: tbs, signature: auth.signature)
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(wireFormat.rawValue)
        content.encode(to: &writer)
        auth.encode(to: &writer)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        wireFormat = try readWireFormat(&reader)
        content = try reader.read()
        auth = try FramedContentAuthData.decode(contentType: content.body.contentType, from: &reader)
    }
}

/// PublicMessage (§6.2): signed, and MACed with the membership key when a member sent it.
public struct PublicMessage: TLSCodable, Hashable, Sendable {
    public var content: FramedContent
    public var auth: FramedContentAuthData
    public var membershipTag: [UInt8]?

    public init(content: FramedContent, auth: FramedContentAuthData, membershipTag: [UInt8]?) {
        self.content = content
        self.auth = auth
        self.membershipTag = membershipTag
    }

    /// Frames signed content; a member's message gets its membership tag from `membershipKey`.
    public init(protecting authenticated: AuthenticatedContent, suite: CipherSuite, membershipKey: SecretBytes?, context: GroupContext?) throws(MLSError) {
        guard authenticated.wireFormat == .publicMessage else { throw .protocolViolation("content signed for another wire format") }
        content = authenticated.content
        auth = authenticated.auth
        if case .member = content.sender {
            guard let membershipKey, let context else { throw .protocolViolation("a member's PublicMessage needs the membership key") }
            membershipTag = Self.membershipTag(suite: suite, key: membershipKey, content: content, auth: auth, context: context)
        } else {
            membershipTag = nil
        }
    }

    /// MAC(membership_key, AuthenticatedContentTBM{ FramedContentTBS; FramedContentAuthData }).
    static func membershipTag(suite: CipherSuite, key: SecretBytes, content: FramedContent, auth: FramedContentAuthData, context: GroupContext) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeBytes(AuthenticatedContent.toBeSigned(wireFormat: .publicMessage, content: content, context: context))
        auth.encode(to: &writer)
        return suite.mac(key: key, data: writer.bytes)
    }

    /// Checks the membership tag of a member's message (constant time) and returns the content; the
    /// signature is checked by the caller, who knows the sender's key.
    public func unprotect(suite: CipherSuite, membershipKey: SecretBytes, context: GroupContext) throws(MLSError) -> AuthenticatedContent {
        if case .member = content.sender {
            guard let membershipTag,
                  constantTimeEquals(membershipTag, Self.membershipTag(suite: suite, key: membershipKey, content: content, auth: auth, context: context))
            else { throw .protocolViolation("membership tag does not verify") }
        }
        return AuthenticatedContent(wireFormat: .publicMessage, content: content, auth: auth)
    }

    public func encode(to writer: inout TLSWriter) {
        content.encode(to: &writer)
        auth.encode(to: &writer)
        if case .member = content.sender { writer.writeOpaque(membershipTag ?? []) }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        content = try reader.read()
        auth = try FramedContentAuthData.decode(contentType: content.body.contentType, from: &reader)
        if case .member = content.sender {
            membershipTag = try reader.readOpaque()
        } else {
            membershipTag = nil
        }
    }
}

/// PrivateMessage (§6.3): the content encrypted under a key of the sender's ratchet, the sender's
/// identity and generation encrypted under a key derived from a sample of that ciphertext.
public struct PrivateMessage: TLSCodable, Hashable, Sendable {
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var contentType: ContentType
    public var authenticatedData: [UInt8]
    public var encryptedSenderData: [UInt8]
    public var ciphertext: [UInt8]

    public init(groupID: [UInt8], epoch: UInt64, contentType: ContentType, authenticatedData: [UInt8],
                encryptedSenderData: [UInt8], ciphertext: [UInt8]) {
        self.groupID = groupID
        self.epoch = epoch
        self.contentType = contentType
        self.authenticatedData = authenticatedData
        self.encryptedSenderData = encryptedSenderData
        self.ciphertext = ciphertext
    }

    /// Encrypts signed content from a member. `padding` zero bytes are appended inside the ciphertext
    /// (hiding the content's length up to that); `reuseGuard` is 4 random bytes.
    public static func protect(_ authenticated: AuthenticatedContent, suite: CipherSuite, secretTree: inout SecretTree,
                               senderDataSecret: SecretBytes, padding: Int = 0,
                               random: any RandomSource = SystemRandom()) throws(MLSError) -> PrivateMessage {
        guard authenticated.wireFormat == .privateMessage else { throw .protocolViolation("content signed for another wire format") }
        let content = authenticated.content
        guard case .member(let leaf) = content.sender else { throw .protocolViolation("only members send PrivateMessages") }
        let type = content.body.contentType
        let ratchetKey = try secretTree.nextKey(leaf: leaf, kind: type == .application ? .application : .handshake)
        let reuseGuard = random.bytes(4)

        var plaintext = TLSWriter()
        content.body.encode(to: &plaintext)
        authenticated.auth.encode(to: &plaintext)
        plaintext.writeBytes(repeatElement(UInt8(0), count: max(0, padding)))
        var body = plaintext.bytes
        defer { wipe(&body) }
        let ciphertext = try suite.seal(key: ratchetKey.key, nonce: applyReuseGuard(reuseGuard, to: ratchetKey.nonce),
                                        aad: contentAAD(groupID: content.groupID, epoch: content.epoch, type: type, authenticatedData: content.authenticatedData),
                                        plaintext: body)

        var senderData = TLSWriter()
        senderData.writeUInt32(leaf)
        senderData.writeUInt32(ratchetKey.generation)
        senderData.writeBytes(reuseGuard)
        let senderKeys = SenderDataKeys.derive(suite: suite, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
        let encryptedSenderData = try suite.seal(key: senderKeys.key, nonce: senderKeys.nonce,
                                                 aad: senderDataAAD(groupID: content.groupID, epoch: content.epoch, type: type),
                                                 plaintext: senderData.bytes)
        return PrivateMessage(groupID: content.groupID, epoch: content.epoch, contentType: type, authenticatedData: content.authenticatedData,
                              encryptedSenderData: encryptedSenderData, ciphertext: ciphertext)
    }

    /// Decrypts the sender data, then the content with the sender's key for that generation (which the
    /// secret tree then deletes). Refuses non-zero padding. The signature is the caller's to check.
    /// On error `secretTree` may have advanced: callers work on a copy and keep it only on success.
    public func unprotect(suite: CipherSuite, secretTree: inout SecretTree, senderDataSecret: SecretBytes) throws(MLSError) -> AuthenticatedContent {
        let senderKeys = SenderDataKeys.derive(suite: suite, senderDataSecret: senderDataSecret, ciphertext: ciphertext)
        let senderData = try suite.open(key: senderKeys.key, nonce: senderKeys.nonce,
                                        aad: Self.senderDataAAD(groupID: groupID, epoch: epoch, type: contentType), ciphertext: encryptedSenderData)
        var senderReader = TLSReader(senderData)
        let leaf = try senderReader.readUInt32()
        let generation = try senderReader.readUInt32()
        let reuseGuard = try senderReader.readBytes(4)
        try senderReader.finish()

        let ratchetKey = try secretTree.key(leaf: leaf, kind: contentType == .application ? .application : .handshake, generation: generation)
        var plaintext = try suite.open(key: ratchetKey.key, nonce: Self.applyReuseGuard(reuseGuard, to: ratchetKey.nonce),
                                       aad: Self.contentAAD(groupID: groupID, epoch: epoch, type: contentType, authenticatedData: authenticatedData),
                                       ciphertext: ciphertext)
        defer { wipe(&plaintext) }
        var reader = TLSReader(plaintext)
        let body = try ContentBody.decode(type: contentType, from: &reader)
        let auth = try FramedContentAuthData.decode(contentType: contentType, from: &reader)
        var nonZero: UInt8 = 0
        while !reader.isAtEnd { nonZero |= try reader.readUInt8() }
        guard nonZero == 0 else { throw .protocolViolation("padding is not all zero") }
        let content = FramedContent(groupID: groupID, epoch: epoch, sender: .member(leafIndex: leaf), authenticatedData: authenticatedData, body: body)
        return AuthenticatedContent(wireFormat: .privateMessage, content: content, auth: auth)
    }

    static func applyReuseGuard(_ reuseGuard: [UInt8], to nonce: [UInt8]) -> [UInt8] {
        var out = nonce
        for i in 0..<4 { out[i] ^= reuseGuard[i] }
        return out
    }

    /// PrivateContentAAD.
    static func contentAAD(groupID: [UInt8], epoch: UInt64, type: ContentType, authenticatedData: [UInt8]) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.writeUInt8(type.rawValue)
        writer.writeOpaque(authenticatedData)
        return writer.bytes
    }

    /// SenderDataAAD.
    static func senderDataAAD(groupID: [UInt8], epoch: UInt64, type: ContentType) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.writeUInt8(type.rawValue)
        return writer.bytes
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.writeUInt8(contentType.rawValue)
        writer.writeOpaque(authenticatedData)
        writer.writeOpaque(encryptedSenderData)
        writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        contentType = try readContentType(&reader)
        authenticatedData = try reader.readOpaque()
        encryptedSenderData = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}
