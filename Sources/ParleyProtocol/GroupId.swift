import ParleyCrypto

/// A group's id: the MLS `group_id`, 32 random bytes its creator chose (PROTOCOL.md §17). People, JSON and
/// the relay's API write it as 64 lowercase hex digits. The length is checked once, when a GroupId is made.
public struct GroupId: Hashable, Sendable, CustomStringConvertible {
    public static let length = 32

    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count == Self.length else { throw .malformed("a group id is \(Self.length) bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// An id written as 64 hex digits (either case), or nil for anything else.
    public init?(hex text: String) {
        guard text.utf8.count == 2 * Self.length, let bytes = Hex.decode(text.lowercased()), bytes.count == Self.length else { return nil }
        self.bytes = bytes
    }

    public static func random(_ random: any RandomSource = SystemRandom()) -> GroupId {
        try! GroupId(random.bytes(length))
    }

    /// Lowercase hex, as the relay's API writes it.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}
