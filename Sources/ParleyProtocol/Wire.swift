import ParleyCrypto

/// Big-endian writer for the byte layouts of PROTOCOL.md.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xFF)) }
    public mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    public mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xFF)) } }
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    /// `bytes16`: a u16 length, then the bytes.
    public mutating func bytes16(_ b: [UInt8]) {
        precondition(b.count <= Int(UInt16.max), "field too long for bytes16")
        u16(UInt16(b.count)); raw(b)
    }
    /// `bytes32`: a u32 length, then the bytes (nested state records).
    public mutating func bytes32(_ b: [UInt8]) { u32(UInt32(b.count)); raw(b) }
    public mutating func secret(_ s: SecretBytes) { s.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    public mutating func bool(_ v: Bool) { u8(v ? 1 : 0) }

    /// Wipes the buffer (it held secrets that have now been encrypted or discarded).
    public mutating func wipe() { ParleyCrypto.wipe(&bytes) }
}

/// Big-endian reader; every read checks bounds and throws `ProtocolError.malformed` naming the structure.
public struct ByteReader: Sendable {
    private let bytes: [UInt8]
    private var offset = 0
    private let structure: String

    public init(_ bytes: [UInt8], structure: String) {
        self.bytes = bytes
        self.structure = structure
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func raw(_ n: Int) throws(ProtocolError) -> [UInt8] {
        guard n >= 0, remaining >= n else { throw .malformed("\(structure): truncated") }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    public mutating func u8() throws(ProtocolError) -> UInt8 { try raw(1)[0] }
    public mutating func u16() throws(ProtocolError) -> UInt16 { try raw(2).reduce(0) { $0 << 8 | UInt16($1) } }
    public mutating func u32() throws(ProtocolError) -> UInt32 { try raw(4).reduce(0) { $0 << 8 | UInt32($1) } }
    public mutating func u64() throws(ProtocolError) -> UInt64 { try raw(8).reduce(0) { $0 << 8 | UInt64($1) } }
    public mutating func bytes16() throws(ProtocolError) -> [UInt8] { try raw(Int(try u16())) }
    public mutating func bytes32() throws(ProtocolError) -> [UInt8] { try raw(Int(try u32())) }
    public mutating func bool() throws(ProtocolError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw .malformed("\(structure): bad boolean")
        }
    }
    /// Reads `n` bytes straight into a wiped-on-release buffer.
    public mutating func secret(_ n: Int) throws(ProtocolError) -> SecretBytes {
        guard n >= 0, remaining >= n else { throw .malformed("\(structure): truncated") }
        defer { offset += n }
        return bytes.withUnsafeBytes { SecretBytes(UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + n)])) }
    }
    public mutating func rest() -> [UInt8] { defer { offset = bytes.count }; return Array(bytes[offset...]) }

    /// Reads the version byte and refuses anything but protocol version 1.
    public mutating func version() throws(ProtocolError) {
        let v = try u8()
        guard v == ProtocolConstants.version else { throw .unsupportedVersion(structure: structure, version: v) }
    }

    /// Fails when bytes are left over: trailing garbage is malformed, not ignored.
    public func finish() throws(ProtocolError) {
        guard remaining == 0 else { throw .malformed("\(structure): \(remaining) trailing bytes") }
    }
}
