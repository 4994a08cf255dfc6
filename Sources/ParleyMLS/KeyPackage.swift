/// A KeyPackage (RFC 9420 §10): what a client publishes so that others can add it to groups.
public struct KeyPackage: TLSCodable, Hashable, Sendable {
    public var version: ProtocolVersion
    public var cipherSuite: UInt16
    public var initKey: [UInt8]
    public var leafNode: LeafNode
    public var extensions: [MLSExtension]
    public var signature: [UInt8]

    public init(version: ProtocolVersion = mls10, cipherSuite: UInt16, initKey: [UInt8], leafNode: LeafNode,
                extensions: [MLSExtension], signature: [UInt8] = []) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.initKey = initKey
        self.leafNode = leafNode
        self.extensions = extensions
        self.signature = signature
    }

    /// KeyPackageTBS: everything but the signature.
    public var toBeSigned: [UInt8] {
        var writer = TLSWriter()
        encodeContent(to: &writer)
        return writer.bytes
    }

    private func encodeContent(to writer: inout TLSWriter) {
        writer.writeUInt16(version)
        writer.writeUInt16(cipherSuite)
        writer.writeOpaque(initKey)
        leafNode.encode(to: &writer)
        writer.writeVector(extensions)
    }

    public func encode(to writer: inout TLSWriter) {
        encodeContent(to: &writer)
        writer.writeOpaque(signature)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        version = try reader.readUInt16()
        cipherSuite = try reader.readUInt16()
        initKey = try reader.readOpaque()
        leafNode = try reader.read()
        extensions = try reader.readVector(of: MLSExtension.self)
        signature = try reader.readOpaque()
    }

    public mutating func sign(suite: CipherSuite, key: SignaturePrivateKey) {
        signature = suite.signWithLabel(key, label: "KeyPackageTBS", content: toBeSigned)
    }

    /// Signed with the leaf's signature key, under label "KeyPackageTBS".
    public func verifySignature(suite: CipherSuite) -> Bool {
        suite.verifyWithLabel(publicKey: leafNode.signatureKey, label: "KeyPackageTBS", content: toBeSigned, signature: signature)
    }

    /// MakeKeyPackageRef of this KeyPackage's encoding.
    public func reference(suite: CipherSuite) -> [UInt8] { suite.makeKeyPackageRef(tlsEncoded) }
}
