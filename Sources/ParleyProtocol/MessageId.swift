import ParleyCrypto

/// A message's id (PROTOCOL.md §12): 16 bytes its sender chose at random, the same on every device.
/// The length is checked once, when a MessageId is made; code that holds one never checks it again.
public struct MessageId: Hashable, Sendable, CustomStringConvertible {
    public static let length = 16

    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count == Self.length else { throw .malformed("a message id is \(Self.length) bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// An id written as 32 hex digits, or nil for anything else.
    public init?(hex text: String) {
        guard let bytes = Hex.decode(text), bytes.count == Self.length else { return nil }
        self.bytes = bytes
    }

    /// The next `length` bytes of `reader`.
    init(from reader: inout ByteReader) throws(ProtocolError) {
        bytes = try reader.raw(Self.length)
    }

    private init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    public static func random(_ random: any RandomSource = SystemRandom()) -> MessageId {
        MessageId(unchecked: random.bytes(length))
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}
