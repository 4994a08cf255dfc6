/// The TLS presentation language as MLS uses it (RFC 9420 §2.1): big-endian integers and vectors whose
/// length is a QUIC-style variable-length integer. The reader is for bytes a peer controls: it never
/// traps, refuses a length past the input before allocating anything, refuses non-minimal varints, and
/// whole-message decoding refuses trailing bytes.
public struct TLSReader: Sendable {
    private let bytes: [UInt8]
    /// Position of the next unread byte.
    public private(set) var offset: Int
    /// One past the last byte this reader may read (a vector's reader stops at the vector's end).
    private let end: Int

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        offset = 0
        end = bytes.count
    }

    private init(bytes: [UInt8], offset: Int, end: Int) {
        self.bytes = bytes
        self.offset = offset
        self.end = end
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset == end }

    /// Throws unless every byte has been read.
    public func finish() throws(MLSError) {
        guard offset == end else { throw .trailingBytes }
    }

    public mutating func readUInt8() throws(MLSError) -> UInt8 {
        guard offset < end else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16() throws(MLSError) -> UInt16 {
        UInt16(try readUInt(width: 2))
    }

    public mutating func readUInt32() throws(MLSError) -> UInt32 {
        UInt32(try readUInt(width: 4))
    }

    public mutating func readUInt64() throws(MLSError) -> UInt64 {
        try readUInt(width: 8)
    }

    private mutating func readUInt(width: Int) throws(MLSError) -> UInt64 {
        guard remaining >= width else { throw .truncated }
        var value: UInt64 = 0
        for i in 0..<width { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += width
        return value
    }

    /// A variable-length integer (RFC 9420 §2.1.2): the top two bits of the first byte give the length
    /// (1, 2 or 4 bytes; `0b11` is reserved), and the value must use the shortest form.
    public mutating func readVarint() throws(MLSError) -> Int {
        let first = try readUInt8()
        let prefix = first >> 6
        var value = UInt32(first & 0x3F)
        let extra: Int
        switch prefix {
        case 0: return Int(value)
        case 1: extra = 1
        case 2: extra = 3
        default: throw .invalidVarint
        }
        guard remaining >= extra else { throw .truncated }
        for _ in 0..<extra {
            value = value << 8 | UInt32(bytes[offset])
            offset += 1
        }
        let minimum: UInt32 = prefix == 1 ? 64 : 16384
        guard value >= minimum else { throw .invalidVarint }
        return Int(value)
    }

    /// Exactly `count` bytes; the count is checked against the input before anything is allocated.
    public mutating func readBytes(_ count: Int) throws(MLSError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw .truncated }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// `opaque data<V>`: a varint length, then that many bytes.
    public mutating func readOpaque() throws(MLSError) -> [UInt8] {
        let length = try readVarint()
        return try readBytes(length)
    }

    /// `T data<V>`: a varint byte length, then elements until exactly that many bytes are used. An element
    /// that runs past the vector's end is refused.
    public mutating func readVector<T>(_ element: (inout TLSReader) throws(MLSError) -> T) throws(MLSError) -> [T] {
        let length = try readVarint()
        guard length <= remaining else { throw .truncated }
        var inner = TLSReader(bytes: bytes, offset: offset, end: offset + length)
        var items: [T] = []
        while !inner.isAtEnd {
            let before = inner.offset
            items.append(try element(&inner))
            // An element that reads nothing would repeat forever; every MLS element reads at least a byte.
            guard inner.offset > before else { throw .invalidValue("empty vector element") }
        }
        offset += length
        return items
    }

    /// `optional<T>`: a presence byte (0 or 1), then the value if present.
    public mutating func readOptional<T>(_ element: (inout TLSReader) throws(MLSError) -> T) throws(MLSError) -> T? {
        switch try readUInt8() {
        case 0: return nil
        case 1: return try element(&self)
        default: throw .invalidValue("optional presence byte")
        }
    }

    public mutating func read<T: TLSDecodable>(_: T.Type = T.self) throws(MLSError) -> T {
        try T(from: &self)
    }

    public mutating func readVector<T: TLSDecodable>(of _: T.Type) throws(MLSError) -> [T] {
        try readVector { (r: inout TLSReader) throws(MLSError) in try T(from: &r) }
    }

    public mutating func readOptional<T: TLSDecodable>(of _: T.Type) throws(MLSError) -> T? {
        try readOptional { (r: inout TLSReader) throws(MLSError) in try T(from: &r) }
    }
}

/// Builds TLS-encoded bytes. Lengths are our own, so an impossible one (a vector of 1 GiB or more) is a
/// programming error rather than input to reject.
public struct TLSWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    public mutating func writeUInt16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8)); bytes.append(UInt8(truncatingIfNeeded: value))
    }

    public mutating func writeUInt32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public mutating func writeUInt64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// The shortest variable-length encoding of `value` (< 2^30).
    public mutating func writeVarint(_ value: Int) {
        precondition(value >= 0 && value < 1 << 30, "MLS varint out of range")
        switch value {
        case ..<64: bytes.append(UInt8(value))
        case ..<16384:
            bytes.append(0x40 | UInt8(value >> 8)); bytes.append(UInt8(value & 0xFF))
        default:
            bytes.append(0x80 | UInt8(value >> 24)); bytes.append(UInt8((value >> 16) & 0xFF))
            bytes.append(UInt8((value >> 8) & 0xFF)); bytes.append(UInt8(value & 0xFF))
        }
    }

    /// Raw bytes, no length.
    public mutating func writeBytes(_ value: some Collection<UInt8>) { bytes.append(contentsOf: value) }

    /// `opaque data<V>`.
    public mutating func writeOpaque(_ value: some Collection<UInt8>) {
        writeVarint(value.count)
        bytes.append(contentsOf: value)
    }

    /// `T data<V>`: the body is written first, then its length is put in front of it.
    public mutating func writeVector(_ body: (inout TLSWriter) -> Void) {
        var inner = TLSWriter()
        body(&inner)
        writeOpaque(inner.bytes)
    }

    public mutating func writeVector<T: TLSEncodable>(_ items: [T]) {
        writeVector { w in for item in items { item.encode(to: &w) } }
    }

    public mutating func writeOptional<T>(_ value: T?, _ body: (inout TLSWriter, T) -> Void) {
        if let value {
            writeUInt8(1)
            body(&self, value)
        } else {
            writeUInt8(0)
        }
    }

    public mutating func writeOptional<T: TLSEncodable>(_ value: T?) {
        writeOptional(value) { w, v in v.encode(to: &w) }
    }

    public mutating func write(_ value: some TLSEncodable) { value.encode(to: &self) }
}

public protocol TLSEncodable {
    func encode(to writer: inout TLSWriter)
}

public protocol TLSDecodable {
    init(from reader: inout TLSReader) throws(MLSError)
}

public typealias TLSCodable = TLSEncodable & TLSDecodable

extension TLSEncodable {
    /// The value's TLS encoding.
    public var tlsEncoded: [UInt8] {
        var writer = TLSWriter()
        encode(to: &writer)
        return writer.bytes
    }
}

extension TLSDecodable {
    /// Decodes a whole message: bytes left over are an error.
    public init(tlsEncoded bytes: [UInt8]) throws(MLSError) {
        var reader = TLSReader(bytes)
        try self.init(from: &reader)
        try reader.finish()
    }
}
