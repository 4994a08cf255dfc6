/// Which conversation something belongs to: a direct conversation with one account, or a group.
/// Code that only passes a conversation along (the store, events, the window's panes) takes this type and
/// never looks inside, so adding a case changes only the code that must tell the cases apart.
public enum ConversationId: Hashable, Sendable, CustomStringConvertible {
    /// The conversation with one other account (or with this account's own devices' notes to itself).
    case direct(AccountAddress)
    /// A group's conversation (PROTOCOL.md §17), named by the group's id.
    case group(GroupId)

    /// The account of a direct conversation.
    public var peer: AccountAddress? {
        switch self {
        case .direct(let address): address
        case .group: nil
        }
    }

    /// The id of a group's conversation.
    public var group: GroupId? {
        switch self {
        case .direct: nil
        case .group(let id): id
        }
    }

    /// How people and JSON name it: a direct conversation by its account's address, a group as
    /// `group:` and its id in hex (never an address: an address has an '@').
    public var description: String {
        switch self {
        case .direct(let address): address.description
        case .group(let id): Self.groupPrefix + id.hex
        }
    }

    static let groupPrefix = "group:"

    // MARK: The `destination` of a Content (PROTOCOL.md §12) and a history record's conversation field

    /// The text that names the conversation in a Content's `destination` and in the store's message
    /// records: the peer's address for a direct conversation, exactly as protocol v2 writes it.
    public var destination: String { description }

    /// The conversation a `destination` text names.
    public init(destination: String) throws(ProtocolError) {
        if destination.hasPrefix(Self.groupPrefix) {
            guard let id = GroupId(hex: String(destination.dropFirst(Self.groupPrefix.count))) else {
                throw .malformed("destination: a group id is \(2 * GroupId.length) hex digits")
            }
            self = .group(id)
            return
        }
        do { self = .direct(try AccountAddress(destination)) } catch {
            throw .malformed("destination: \(error.description)")
        }
    }

    // MARK: The store's conversation key

    /// `kind u8 ‖ bytes16(payload)`: kind 1 is a direct conversation, its payload the address's UTF-8
    /// text; kind 2 a group, its payload the 32 bytes of its id. The store keys and seals conversations
    /// by these bytes, so two kinds never collide.
    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 64)
        switch self {
        case .direct(let address):
            w.u8(Self.directKind)
            w.bytes16(Array(address.description.utf8))
        case .group(let id):
            w.u8(Self.groupKind)
            w.bytes16(id.bytes)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "ConversationId")
        let kind = try r.u8()
        let payload = try r.bytes16()
        try r.finish()
        switch kind {
        case Self.directKind:
            guard let text = String(validating: payload, as: UTF8.self) else { throw .malformed("ConversationId: address is not UTF-8") }
            self = try ConversationId(destination: text)
        case Self.groupKind:
            self = .group(try GroupId(payload))
        default:
            throw .malformed("ConversationId: unknown kind \(kind)")
        }
    }

    private static let directKind: UInt8 = 1
    private static let groupKind: UInt8 = 2
}
