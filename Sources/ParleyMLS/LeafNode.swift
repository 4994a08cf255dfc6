import ParleyCrypto

/// Shared building blocks of KeyPackages and the ratchet tree (RFC 9420 §§5.3, 7.2, 13). They are wire
/// values: decoding checks the encoding, not the protocol rules (a LeafNode's signature and capabilities
/// are checked where a leaf is accepted into a tree).

public typealias ProtocolVersion = UInt16
public let mls10: ProtocolVersion = 1

/// struct { ExtensionType extension_type; opaque extension_data<V>; } Extension
public struct Extension: TLSCodable, Hashable, Sendable {
    public var type: UInt16
    public var data: [UInt8]

    public static let applicationID: UInt16 = 1
    public static let ratchetTree: UInt16 = 2
    public static let requiredCapabilities: UInt16 = 3
    public static let externalPub: UInt16 = 4
    public static let externalSenders: UInt16 = 5

    public init(type: UInt16, data: [UInt8]) {
        self.type = type
        self.data = data
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(type)
        writer.writeOpaque(data)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        type = try reader.readUInt16()
        data = try reader.readOpaque()
    }
}

/// A credential (§5.3). Parley uses basic credentials; X.509 chains are carried (so that messages of other
/// implementations decode) but not trusted by anything here.
public enum Credential: TLSCodable, Hashable, Sendable {
    case basic(identity: [UInt8])
    case x509(certificates: [[UInt8]])

    public static let basicType: UInt16 = 1
    public static let x509Type: UInt16 = 2

    public var type: UInt16 {
        switch self {
        case .basic: Self.basicType
        case .x509: Self.x509Type
        }
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(type)
        switch self {
        case .basic(let identity): writer.writeOpaque(identity)
        case .x509(let certificates): writer.writeVector { w in for cert in certificates { w.writeOpaque(cert) } }
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt16() {
        case Self.basicType: self = .basic(identity: try reader.readOpaque())
        case Self.x509Type: self = .x509(certificates: try reader.readVector { (r: inout TLSReader) throws(MLSError) in try r.readOpaque() })
        default: throw .invalidValue("credential type")
        }
    }
}

/// What a client supports (§7.2). Values are kept raw: peers list suites, extensions and proposals that
/// Parley does not implement (GREASE values among them, §13.5).
public struct Capabilities: TLSCodable, Hashable, Sendable {
    public var versions: [UInt16]
    public var cipherSuites: [UInt16]
    public var extensions: [UInt16]
    public var proposals: [UInt16]
    public var credentials: [UInt16]

    public init(versions: [UInt16] = [mls10], cipherSuites: [UInt16], extensions: [UInt16] = [], proposals: [UInt16] = [],
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
        let read = { (r: inout TLSReader) throws(MLSError) -> UInt16 in try r.readUInt16() }
        versions = try reader.readVector(read)
        cipherSuites = try reader.readVector(read)
        extensions = try reader.readVector(read)
        proposals = try reader.readVector(read)
        credentials = try reader.readVector(read)
    }
}

/// struct { uint64 not_before; uint64 not_after; } Lifetime (seconds since the Unix epoch).
public struct Lifetime: TLSCodable, Hashable, Sendable {
    public var notBefore: UInt64
    public var notAfter: UInt64

    public init(notBefore: UInt64, notAfter: UInt64) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt64(notBefore)
        writer.writeUInt64(notAfter)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        notBefore = try reader.readUInt64()
        notAfter = try reader.readUInt64()
    }
}

/// Where a LeafNode came from, with the field that depends on it.
public enum LeafNodeSource: Hashable, Sendable {
    case keyPackage(Lifetime)
    case update
    case commit(parentHash: [UInt8])

    public var rawValue: UInt8 {
        switch self {
        case .keyPackage: 1
        case .update: 2
        case .commit: 3
        }
    }
}

/// A member's leaf (§7.2).
public struct LeafNode: TLSCodable, Hashable, Sendable {
    public var encryptionKey: [UInt8]
    public var signatureKey: [UInt8]
    public var credential: Credential
    public var capabilities: Capabilities
    public var source: LeafNodeSource
    public var extensions: [Extension]
    public var signature: [UInt8]

    public init(encryptionKey: [UInt8], signatureKey: [UInt8], credential: Credential, capabilities: Capabilities,
                source: LeafNodeSource, extensions: [Extension], signature: [UInt8] = []) {
        self.encryptionKey = encryptionKey
        self.signatureKey = signatureKey
        self.credential = credential
        self.capabilities = capabilities
        self.source = source
        self.extensions = extensions
        self.signature = signature
    }

    /// The fields before the signature, shared by the wire form and the to-be-signed form.
    private func encodeContent(to writer: inout TLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(signatureKey)
        credential.encode(to: &writer)
        capabilities.encode(to: &writer)
        writer.writeUInt8(source.rawValue)
        switch source {
        case .keyPackage(let lifetime): lifetime.encode(to: &writer)
        case .update: break
        case .commit(let parentHash): writer.writeOpaque(parentHash)
        }
        writer.writeVector(extensions)
    }

    public func encode(to writer: inout TLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        encryptionKey = try reader.readOpaque()
        signatureKey = try reader.readOpaque()
        credential = try reader.read()
        capabilities = try reader.read()
        switch try reader.readUInt8() {
        case 1: source = .keyPackage(try reader.read())
        case 2: source = .update
        case 3: source = .commit(parentHash: try reader.readOpaque())
        default: throw .invalidValue("leaf node source")
        }
        extensions = try reader.readVector(of: Extension.self)
        signature = try reader.readOpaque()
    }

    /// LeafNodeTBS: the content, then for update and commit leaves the group and the leaf's position.
    public func toBeSigned(groupID: [UInt8], leafIndex: UInt32) -> [UInt8] {
        var writer = TLSWriter()
        encodeContent(to: &writer)
        switch source {
        case .keyPackage: break
        case .update, .commit:
            writer.writeOpaque(groupID)
            writer.writeUInt32(leafIndex)
        }
        return writer.bytes
    }

    /// Signs with label "LeafNodeTBS"; `groupID`/`leafIndex` are ignored for a KeyPackage leaf.
    public mutating func sign(suite: CipherSuite, key: SignaturePrivateKey, groupID: [UInt8] = [], leafIndex: UInt32 = 0) {
        signature = suite.signWithLabel(key, label: "LeafNodeTBS", content: toBeSigned(groupID: groupID, leafIndex: leafIndex))
    }

    public func verifySignature(suite: CipherSuite, groupID: [UInt8] = [], leafIndex: UInt32 = 0) -> Bool {
        suite.verifyWithLabel(publicKey: signatureKey, label: "LeafNodeTBS",
                              content: toBeSigned(groupID: groupID, leafIndex: leafIndex), signature: signature)
    }
}
