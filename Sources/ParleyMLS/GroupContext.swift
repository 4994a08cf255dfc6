/// The state every member agrees on for an epoch (RFC 9420 §8.1).
public struct GroupContext: TLSCodable, Hashable, Sendable {
    public var version: ProtocolVersion
    public var cipherSuite: UInt16
    public var groupID: [UInt8]
    public var epoch: UInt64
    public var treeHash: [UInt8]
    public var confirmedTranscriptHash: [UInt8]
    public var extensions: [MLSExtension]

    public init(version: ProtocolVersion = mls10, cipherSuite: UInt16, groupID: [UInt8], epoch: UInt64, treeHash: [UInt8],
                confirmedTranscriptHash: [UInt8], extensions: [MLSExtension] = []) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.groupID = groupID
        self.epoch = epoch
        self.treeHash = treeHash
        self.confirmedTranscriptHash = confirmedTranscriptHash
        self.extensions = extensions
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeUInt16(version)
        writer.writeUInt16(cipherSuite)
        writer.writeOpaque(groupID)
        writer.writeUInt64(epoch)
        writer.writeOpaque(treeHash)
        writer.writeOpaque(confirmedTranscriptHash)
        writer.writeVector(extensions)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        version = try reader.readUInt16()
        cipherSuite = try reader.readUInt16()
        groupID = try reader.readOpaque()
        epoch = try reader.readUInt64()
        treeHash = try reader.readOpaque()
        confirmedTranscriptHash = try reader.readOpaque()
        extensions = try reader.readVector(of: MLSExtension.self)
    }
}
