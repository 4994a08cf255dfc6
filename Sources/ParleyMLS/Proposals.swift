/// Proposals and Commits (RFC 9420 §12) as wire values.

/// A proposal of any of the seven types of RFC 9420. Types registered later cannot be carried: the
/// encoding has no length to skip an unknown one by.
public enum Proposal: TLSCodable, Hashable, Sendable {
    case add(KeyPackage)
    case update(LeafNode)
    case remove(leafIndex: UInt32)
    case preSharedKey(PreSharedKeyID)
    case reInit(ReInit)
    case externalInit(kemOutput: [UInt8])
    case groupContextExtensions([MLSExtension])

    public struct ReInit: TLSCodable, Hashable, Sendable {
        public var groupID: [UInt8]
        public var version: ProtocolVersion
        public var cipherSuite: UInt16
        public var extensions: [MLSExtension]

        public init(groupID: [UInt8], version: ProtocolVersion, cipherSuite: UInt16, extensions: [MLSExtension]) {
            self.groupID = groupID
            self.version = version
            self.cipherSuite = cipherSuite
            self.extensions = extensions
        }

        public func encode(to writer: inout TLSWriter) {
            writer.writeOpaque(groupID)
            writer.writeUInt16(version)
            writer.writeUInt16(cipherSuite)
            writer.writeVector(extensions)
        }

        public init(from reader: inout TLSReader) throws(MLSError) {
            groupID = try reader.readOpaque()
            version = try reader.readUInt16()
            cipherSuite = try reader.readUInt16()
            extensions = try reader.readVector(of: MLSExtension.self)
        }
    }

    /// The ProposalType code.
    public var type: UInt16 {
        switch self {
        case .add: 1
        case .update: 2
        case .remove: 3
        case .preSharedKey: 4
        case .reInit: 5
        case .externalInit: 6
        case .groupContextExtensions: 7
        }
    }

    /// The body without the type (as the `*_proposal` fields of messages.json hold it).
    public func encodeBody(to writer: inout TLSWriter) {
        switch self {
        case .add(let keyPackage): keyPackage.encode(to: &writer)
        case .update(let leaf): leaf.encode(to: &writer)
        case .remove(let index): writer.writeUInt32(index)
        case .preSharedKey(let id): id.encode(to: &writer)
        case .reInit(let reInit): reInit.encode(to: &writer)
        case .externalInit(let kemOutput): writer.writeOpaque(kemOutput)
        case .groupContextExtensions(let extensions): writer.writeVector(extensions)
        }
    }

    public static func decodeBody(type: UInt16, from reader: inout TLSReader) throws(MLSError) -> Proposal {
        switch type {
        case 1: .add(try reader.read())
        case 2: .update(try reader.read())
        case 3: .remove(leafIndex: try reader.readUInt32())
        case 4: .preSharedKey(try reader.read())
        case 5: .reInit(try reader.read())
        case 6: .externalInit(kemOutput: try reader.readOpaque())
        case 7: .groupContextExtensions(try reader.readVector(of: MLSExtension.self))
        default: throw .invalidValue("proposal type")
        }
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(type)
        encodeBody(to: &writer)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        let type = try reader.readUInt16()
        self = try Self.decodeBody(type: type, from: &reader)
    }
}

/// A proposal in a Commit: carried whole, or by reference to one sent earlier in the epoch.
public enum ProposalOrRef: TLSCodable, Hashable, Sendable {
    case proposal(Proposal)
    case reference([UInt8])

    public func encode(to writer: inout TLSWriter) {
        switch self {
        case .proposal(let proposal):
            writer.writeUInt8(1)
            proposal.encode(to: &writer)
        case .reference(let ref):
            writer.writeUInt8(2)
            writer.writeOpaque(ref)
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt8() {
        case 1: self = .proposal(try reader.read())
        case 2: self = .reference(try reader.readOpaque())
        default: throw .invalidValue("proposal-or-reference type")
        }
    }
}

/// struct { HPKEPublicKey encryption_key; HPKECiphertext encrypted_path_secret<V>; } UpdatePathNode
public struct UpdatePathNode: TLSCodable, Hashable, Sendable {
    public var encryptionKey: [UInt8]
    public var encryptedPathSecret: [HPKECiphertext]

    public init(encryptionKey: [UInt8], encryptedPathSecret: [HPKECiphertext]) {
        self.encryptionKey = encryptionKey
        self.encryptedPathSecret = encryptedPathSecret
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeVector(encryptedPathSecret)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        encryptionKey = try reader.readOpaque()
        encryptedPathSecret = try reader.readVector(of: HPKECiphertext.self)
    }
}

/// struct { LeafNode leaf_node; UpdatePathNode nodes<V>; } UpdatePath
public struct UpdatePath: TLSCodable, Hashable, Sendable {
    public var leafNode: LeafNode
    public var nodes: [UpdatePathNode]

    public init(leafNode: LeafNode, nodes: [UpdatePathNode]) {
        self.leafNode = leafNode
        self.nodes = nodes
    }

    public func encode(to writer: inout TLSWriter) {
        leafNode.encode(to: &writer)
        writer.writeVector(nodes)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        leafNode = try reader.read()
        nodes = try reader.readVector(of: UpdatePathNode.self)
    }
}

/// struct { ProposalOrRef proposals<V>; optional<UpdatePath> path; } Commit
public struct Commit: TLSCodable, Hashable, Sendable {
    public var proposals: [ProposalOrRef]
    public var path: UpdatePath?

    public init(proposals: [ProposalOrRef], path: UpdatePath?) {
        self.proposals = proposals
        self.path = path
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeVector(proposals)
        writer.writeOptional(path)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        proposals = try reader.readVector(of: ProposalOrRef.self)
        path = try reader.readOptional(of: UpdatePath.self)
    }
}
