/// `ParentNode` (RFC 9420 §7.1): a key shared by the members below it, the parent hash that chains it to the
/// UpdatePath that set it, and the leaves added below it since (which do not know its private key).
public struct ParentNode: Hashable, Sendable, TLSCodable {
    public var encryptionKey: [UInt8]
    public var parentHash: [UInt8]
    /// Leaf indices, in increasing order.
    public var unmergedLeaves: [UInt32]

    public init(encryptionKey: [UInt8], parentHash: [UInt8] = [], unmergedLeaves: [UInt32] = []) {
        self.encryptionKey = encryptionKey
        self.parentHash = parentHash
        self.unmergedLeaves = unmergedLeaves
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(encryptionKey)
        writer.writeOpaque(parentHash)
        writer.writeVector { w in for leaf in unmergedLeaves { w.writeUInt32(leaf) } }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        encryptionKey = try reader.readOpaque()
        parentHash = try reader.readOpaque()
        unmergedLeaves = try reader.readVector { (r: inout TLSReader) throws(MLSError) in try r.readUInt32() }
    }
}

/// `Node` of the `ratchet_tree` extension (RFC 9420 §12.4.3.3): a leaf or a parent, tagged by `NodeType`.
/// Indirect: a node is one boxed reference, so copying a tree's node array retains once per node rather
/// than once per field of every leaf.
public indirect enum Node: Hashable, Sendable, TLSCodable {
    case leaf(LeafNode)
    case parent(ParentNode)

    static let leafType: UInt8 = 1
    static let parentType: UInt8 = 2

    public var encryptionKey: [UInt8] {
        switch self {
        case .leaf(let leaf): leaf.encryptionKey
        case .parent(let parent): parent.encryptionKey
        }
    }

    public var parentHash: [UInt8]? {
        switch self {
        case .leaf(let leaf): leaf.parentHash
        case .parent(let parent): parent.parentHash
        }
    }

    public var leafNode: LeafNode? {
        if case .leaf(let leaf) = self { return leaf }
        return nil
    }

    public var parentNode: ParentNode? {
        if case .parent(let parent) = self { return parent }
        return nil
    }

    public func encode(to writer: inout TLSWriter) {
        switch self {
        case .leaf(let leaf):
            writer.writeUInt8(Node.leafType)
            leaf.encode(to: &writer)
        case .parent(let parent):
            writer.writeUInt8(Node.parentType)
            parent.encode(to: &writer)
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt8() {
        case Node.leafType: self = .leaf(try LeafNode(from: &reader))
        case Node.parentType: self = .parent(try ParentNode(from: &reader))
        default: throw .invalidValue("node type")
        }
    }
}
