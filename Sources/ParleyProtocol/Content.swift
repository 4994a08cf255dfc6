import ParleyCrypto

/// The application content inside the ratchet (PROTOCOL.md §12). One encoding for every device: the
/// same bytes go to the peer's devices and to the sender's own other devices, which is why `destination`
/// names the conversation (the receiving device files a message from its own account under
/// `destination`, any other under the sender).
public struct Content: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        case text(String)
        /// Delivery (`read == false`) or read receipts for earlier messages, by client message id.
        case receipt(read: Bool, messageIds: [[UInt8]])
        case typing(started: Bool)
    }

    public static let messageIdLength = 16

    /// Random per message, the same on every device; receivers drop repeats of (sender, id).
    public let messageId: [UInt8]
    public let sentAt: UInt64
    public let destination: String
    public let body: Body

    public init(messageId: [UInt8], sentAt: UInt64, destination: String, body: Body) {
        precondition(messageId.count == Self.messageIdLength)
        self.messageId = messageId
        self.sentAt = sentAt
        self.destination = destination
        self.body = body
    }

    public static func newMessageId(random: any RandomSource = SystemRandom()) -> [UInt8] { random.bytes(messageIdLength) }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(ProtocolConstants.version)
        switch body {
        case .text: w.u8(0x01)
        case .receipt: w.u8(0x02)
        case .typing: w.u8(0x03)
        }
        w.raw(messageId)
        w.u64(sentAt)
        w.bytes16(Array(destination.utf8))
        switch body {
        case .text(let text): w.bytes32(Array(text.utf8))
        case .receipt(let read, let ids):
            w.bool(read)
            w.u16(UInt16(ids.count))
            for id in ids { w.raw(id) }
        case .typing(let started): w.bool(started)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "Content")
        try r.version()
        let type = try r.u8()
        messageId = try r.raw(Self.messageIdLength)
        sentAt = try r.u64()
        guard let destination = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("Content: destination") }
        self.destination = destination
        switch type {
        case 0x01:
            guard let text = String(validating: try r.bytes32(), as: UTF8.self) else { throw .malformed("Content: text is not UTF-8") }
            body = .text(text)
        case 0x02:
            let read = try r.bool()
            var ids: [[UInt8]] = []
            for _ in 0..<Int(try r.u16()) { ids.append(try r.raw(Self.messageIdLength)) }
            body = .receipt(read: read, messageIds: ids)
        case 0x03:
            body = .typing(started: try r.bool())
        default:
            throw .malformed("Content: unknown type \(type)")
        }
        try r.finish()
    }
}
