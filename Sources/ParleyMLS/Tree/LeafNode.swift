/// The leaf of a ratchet tree: one member's keys, credential and capabilities, signed by that member
/// (RFC 9420 §7.2). The same structure sits inside a KeyPackage.

/// `Credential` (RFC 9420 §5.3). Only the two registered types have a known layout; any other type cannot
/// be skipped (its length is not on the wire), so it is refused when decoding.
public enum Credential: Hashable, Sendable, TLSCodable {
    case basic(identity: [UInt8])
    case x509(certificates: [[UInt8]])

    public static let basicType: UInt16 = 1
    public static let x509Type: UInt16 = 2

    public var credentialType: UInt16 {
        switch self {
        case .basic: Credential.basicType
        case .x509: Credential.x509Type
        }
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(credentialType)
        switch self {
        case .basic(let identity):
            writer.writeOpaque(identity)
        case .x509(let certificates):
            writer.writeVector { w in for certificate in certificates { w.writeOpaque(certificate) } }
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt16() {
        case Credential.basicType:
            self = .basic(identity: try reader.readOpaque())
        case Credential.x509Type:
            self = .x509(certificates: try reader.readVector { (r: inout TLSReader) throws(MLSError) in try r.readOpaque() })
        default:
            throw .invalidValue("credential type")
        }
    }
}

/// `Capabilities` (RFC 9420 §7.2): what a client supports. Unknown values are kept and ignored.
public struct Capabilities: Hashable, Sendable, TLSCodable {
    public var versions: [UInt16]
    public var cipherSuites: [UInt16]
    public var extensions: [UInt16]
    public var proposals: [UInt16]
    public var credentials: [UInt16]

    public init(versions: [UInt16] = [1], cipherSuites: [UInt16], extensions: [UInt16] = [], proposals: [UInt16] = [],
                credentials: [UInt16] = [Credential.basicType]) {
        self.versions = versions
        self.cipherSuites = cipherSuites
        self.extensions = extensions
        self.proposals = proposals
        self.credentials = credentials
    }

    public func encode(to writer: inout TLSWriter) {
        for list in [versions, cipherSuites, extensions, proposals, credentials] {
            writer.writeVector { w in for value in list { w.writeUInt16(value) } }
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        func list(_ r: inout TLSReader) throws(MLSError) -> [UInt16] {
            try r.readVector { (e: inout TLSReader) throws(MLSError) in try e.readUInt16() }
        }
        versions = try list(&reader)
        cipherSuites = try list(&reader)
        extensions = try list(&reader)
        proposals = try list(&reader)
        credentials = try list(&reader)
    }
}

/// `Lifetime` (RFC 9420 §7.2): seconds since the Unix epoch, both ends inclusive.
public struct Lifetime: Hashable, Sendable, TLSCodable {
    public var notBefore: UInt64
    public var notAfter: UInt64

    public init(notBefore: UInt64, notAfter: UInt64) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    public func contains(_ time: UInt64) -> Bool { notBefore <= time && time <= notAfter }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt64(notBefore)
        writer.writeUInt64(notAfter)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        notBefore = try reader.readUInt64()
        notAfter = try reader.readUInt64()
    }
}

/// `Extension` (RFC 9420 §13): a type and opaque data, interpreted by whoever knows the type.
public struct MLSExtension: Hashable, Sendable, TLSCodable {
    public var extensionType: UInt16
    public var data: [UInt8]

    public init(type: UInt16, data: [UInt8]) {
        extensionType = type
        self.data = data
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(extensionType)
        writer.writeOpaque(data)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        extensionType = try reader.readUInt16()
        data = try reader.readOpaque()
    }
}

/// How a LeafNode came to be, which decides what its signature covers (RFC 9420 §7.2).
public enum LeafNodeSource: Hashable, Sendable {
    case keyPackage(Lifetime)
    case update
    case commit(parentHash: [UInt8])

    var wireValue: UInt8 {
        switch self {
        case .keyPackage: 1
        case .update: 2
        case .commit: 3
        }
    }
}

/// Where a leaf node's signature is bound to a group: `update` and `commit` leaves sign the group id and
/// their leaf index, `key_package` leaves sign neither (they are made before the group is known).
public struct LeafNodeSignatureContext: Sendable {
    public var groupID: [UInt8]
    public var leafIndex: UInt32

    public init(groupID: [UInt8], leafIndex: UInt32) {
        self.groupID = groupID
        self.leafIndex = leafIndex
    }
}

public struct LeafNode: Hashable, Sendable, TLSCodable {
    public var encryptionKey: [UInt8]
    public var signatureKey: [UInt8]
    public var credential: Credential
    public var capabilities: Capabilities
    public var source: LeafNodeSource
    public var extensions: [MLSExtension]
    public var signature: [UInt8]

    public static let signatureLabel = "LeafNodeTBS"

    public init(encryptionKey: [UInt8], signatureKey: [UInt8], credential: Credential, capabilities: Capabilities,
                source: LeafNodeSource, extensions: [MLSExtension], signature: [UInt8] = []) {
        self.encryptionKey = encryptionKey
        self.signatureKey = signatureKey
        self.credential = credential
        self.capabilities = capabilities
        self.source = source
        self.extensions = extensions
        self.signature = signature
    }

    public var parentHash: [UInt8]? {
        if case .commit(let hash) = source { return hash }
        return nil
    }

    private func encodeContent(to writer: inout TLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(signatureKey)
        credential.encode(to: &writer)
        capabilities.encode(to: &writer)
        writer.writeUInt8(source.wireValue)
        switch source {
        case .keyPackage(let lifetime): lifetime.encode(to: &writer)
        case .update: break
        case .commit(let parentHash): writer.writeOpaque(parentHash)
        }
        writer.writeVector(extensions)
    }

    /// `LeafNodeTBS`: the content, then the group id and leaf index for `update` and `commit` leaves.
    /// Returns `nil` when such a leaf is asked for without a group context (it cannot be checked then).
    public func toBeSigned(context: LeafNodeSignatureContext?) -> [UInt8]? {
        var writer = TLSWriter()
        encodeContent(to: &writer)
        switch source {
        case .keyPackage:
            break
        case .update, .commit:
            guard let context else { return nil }
            writer.writeOpaque(context.groupID)
            writer.writeUInt32(context.leafIndex)
        }
        return writer.bytes
    }

    public func encode(to writer: inout TLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        encryptionKey = try reader.readOpaque()
        signatureKey = try reader.readOpaque()
        credential = try Credential(from: &reader)
        capabilities = try Capabilities(from: &reader)
        switch try reader.readUInt8() {
        case 1: source = .keyPackage(try Lifetime(from: &reader))
        case 2: source = .update
        case 3: source = .commit(parentHash: try reader.readOpaque())
        default: throw .invalidValue("leaf node source")
        }
        extensions = try reader.readVector(of: MLSExtension.self)
        signature = try reader.readOpaque()
    }

    /// Whether the signature verifies under `signatureKey` with the TBS for this leaf's source.
    public func hasValidSignature(suite: CipherSuite, context: LeafNodeSignatureContext?) -> Bool {
        guard let tbs = toBeSigned(context: context) else { return false }
        return suite.verifyWithLabel(publicKey: signatureKey, label: LeafNode.signatureLabel, content: tbs,
                                     signature: signature)
    }

    /// Signs the leaf's current content with `key` (whose public half is `signatureKey`).
    public mutating func sign(suite: CipherSuite, key: SignaturePrivateKey, context: LeafNodeSignatureContext?) throws(MLSError) {
        guard let tbs = toBeSigned(context: context) else { throw .invalidValue("leaf node signing context") }
        signature = suite.signWithLabel(key, label: LeafNode.signatureLabel, content: tbs)
    }
}
