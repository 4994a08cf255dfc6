import ParleyCrypto
import ParleyProtocol

public enum MessageDirection: UInt8, Sendable {
    case incoming = 1
    case outgoing = 2
    /// A notice Parley wrote into the conversation (identity changed, device added, undecryptable message).
    case system = 3
}

/// Delivery state of a message, as the conversation pane shows it.
public enum DeliveryState: UInt8, Sendable, CaseIterable {
    /// Encrypted and in the outbox; the relay has not accepted it yet.
    case pending = 0
    /// Accepted by the relay.
    case sent = 1
    case delivered = 2
    case read = 3
    case failed = 4
    /// An incoming message.
    case received = 10
    /// An incoming message the user has read (on this or another of their devices).
    case seen = 11

    /// Order of progress for outgoing messages; a receipt never moves a message backwards.
    public var rank: Int {
        switch self {
        case .pending: 0
        case .failed: 1
        case .sent: 2
        case .delivered: 3
        case .read: 4
        case .received: 5
        case .seen: 6
        }
    }
}

/// How one received message is filed into history: an inbox entry (`EncryptedStore.file(_:ownAddress:)`), or
/// a message of the receive being committed (`EncryptedStore.commit(_:filing:ownAddress:)`).
public struct InboxFiling: Sendable {
    /// The inbox entry filed, or nil for a message filed in the transaction that received it (never in
    /// the inbox).
    public let inboxId: Int64?
    /// Stored in history unless its (sender, client message id) is already there.
    public let message: MessageRecord?
    /// A receipt: this account's own messages with these client message ids advance to `state`.
    public let receipt: (messageIds: [[UInt8]], state: DeliveryState)?
    /// Whose messages the receipt is about: this account's (nil), or those of a conversation (a read
    /// receipt from another of this account's devices marks its incoming messages `seen`).
    public let receiptAbout: ConversationId?
    /// A reaction, edit or delete applied to the message it names (unless refused).
    public let action: MessageAction?

    public init(inboxId: Int64?, message: MessageRecord? = nil, receipt: (messageIds: [[UInt8]], state: DeliveryState)? = nil,
                receiptAbout: ConversationId? = nil, action: MessageAction? = nil) {
        self.inboxId = inboxId
        self.action = action
        self.message = message
        self.receipt = receipt
        self.receiptAbout = receiptAbout
    }
}

/// One outbox row.
public struct OutboxEntry: Sendable, Equatable {
    public let id: Int64
    public let envelope: OutgoingEnvelope
    /// The Content the envelope carries (empty for envelopes sent as raw bytes).
    public let content: [UInt8]
}

/// One message of a conversation, decrypted.
public struct MessageRecord: Sendable, Equatable {
    /// Store id (ordering within the store); 0 until stored.
    public internal(set) var id: Int64
    public let conversation: ConversationId
    public let direction: MessageDirection
    public let sender: DeviceAddress
    /// The sender's id for this message, the same on every device; receivers drop repeats of it.
    public let clientMessageId: [UInt8]
    public let sentAt: UInt64
    public let receivedAt: UInt64
    /// The text, or an attachment's caption (the newest text of an edited message; empty once deleted).
    public internal(set) var text: String
    public internal(set) var state: DeliveryState
    /// The client message id of the message this one replies to.
    public internal(set) var replyTo: [UInt8]?
    public internal(set) var attachment: AttachmentPointer?
    /// The texts this message had before its author edited it, oldest first (MessageActions.swift).
    public internal(set) var earlierTexts: [EarlierText] = []
    /// Deleted for everyone by its author: text, attachment, reply and history are gone.
    public internal(set) var deleted = false
    /// One reaction per person, in the order they were first given.
    public internal(set) var reactions: [Reaction] = []

    public var edited: Bool { !earlierTexts.isEmpty }
    /// When this device deletes the message (milliseconds), for a message of a conversation with a
    /// disappearing-message timer; nil: kept (until retention, if any, removes it).
    public var expiresAt: UInt64?

    public init(conversation: ConversationId, direction: MessageDirection, sender: DeviceAddress, clientMessageId: [UInt8],
                sentAt: UInt64, receivedAt: UInt64, text: String, state: DeliveryState,
                replyTo: [UInt8]? = nil, attachment: AttachmentPointer? = nil, expiresAt: UInt64? = nil) {
        id = 0
        self.expiresAt = expiresAt
        self.replyTo = replyTo
        self.attachment = attachment
        self.conversation = conversation
        self.direction = direction
        self.sender = sender
        self.clientMessageId = clientMessageId
        self.sentAt = sentAt
        self.receivedAt = receivedAt
        self.text = text
        self.state = state
    }
}

/// The conversation a message record names (its `destination` text), remembering the last one: the
/// messages read together almost always share it, and parsing an address is a good part of decoding one.
struct ConversationCache {
    private var last: (text: [UInt8], conversation: ConversationId)?

    mutating func conversation(named text: [UInt8]) throws -> ConversationId {
        if let last, last.text == text { return last.conversation }
        let conversation = try ConversationId(destination: try RecordCodec.string(text))
        last = (text, conversation)
        return conversation
    }
}

/// Cell encodings of the store's records. Versioned like every other encoding.
enum RecordCodec {
    static let version: UInt8 = 1

    static func encode(_ m: MessageRecord) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + m.text.utf8.count)
        w.u8(version)
        w.u8(m.direction.rawValue)
        // A direct conversation is its peer's address, as in the link transfer (PROTOCOL.md §15).
        w.bytes16(Array(m.conversation.destination.utf8))
        w.bytes16(Array(m.sender.address.utf8))
        w.u32(m.sender.deviceId)
        w.bytes16(m.clientMessageId)
        w.u64(m.sentAt)
        w.u64(m.receivedAt)
        w.bytes32(Array(m.text.utf8))
        // Optional trailing fields (absent in records without them): flags, then a reply's quoted id and
        // an attachment pointer. Search reads only the text and never looks past it.
        // Then, from message actions: earlier texts (bit 2), deleted (bit 3), reactions (bit 4).
        let flags: UInt8 = (m.replyTo == nil ? 0 : 1) | (m.attachment == nil ? 0 : 2) | (m.earlierTexts.isEmpty ? 0 : 4)
            | (m.deleted ? 8 : 0) | (m.reactions.isEmpty ? 0 : 16)
        if flags != 0 {
            w.u8(flags)
            if let replyTo = m.replyTo { w.bytes16(replyTo) }
            m.attachment?.encode(into: &w)
            if !m.earlierTexts.isEmpty {
                w.u16(UInt16(m.earlierTexts.count))
                for earlier in m.earlierTexts {
                    w.u64(earlier.until)
                    w.bytes32(Array(earlier.text.utf8))
                }
            }
            if !m.reactions.isEmpty {
                w.u16(UInt16(m.reactions.count))
                for reaction in m.reactions {
                    w.bytes16(Array(reaction.author.utf8))
                    w.bytes16(Array(reaction.emoji.utf8))
                }
            }
        }
        return w.bytes
    }

    static func decodeMessage(_ bytes: [UInt8], id: Int64, state: DeliveryState) throws(StoreError) -> MessageRecord {
        var conversations = ConversationCache()
        return try decodeMessage(bytes, id: id, state: state, &conversations)
    }

    /// The same, naming conversations through `conversations`: a page of one conversation parses its
    /// address once, not once per message.
    static func decodeMessage(_ bytes: [UInt8], id: Int64, state: DeliveryState,
                              _ conversations: inout ConversationCache) throws(StoreError) -> MessageRecord {
        do {
            var r = ByteReader(bytes, structure: "message")
            guard try r.u8() == version else { throw StoreError.malformedRecord(table: "messages", detail: "unknown version") }
            guard let direction = MessageDirection(rawValue: try r.u8()) else {
                throw StoreError.malformedRecord(table: "messages", detail: "direction")
            }
            let conversation = try conversations.conversation(named: try r.bytes16())
            let sender = DeviceAddress(address: try string(try r.bytes16()), deviceId: try r.u32())
            let clientId = try r.bytes16()
            let sentAt = try r.u64(), receivedAt = try r.u64()
            let text = try string(try r.bytes32())
            var replyTo: [UInt8]?
            var attachment: AttachmentPointer?
            var earlierTexts: [EarlierText] = [], reactions: [Reaction] = [], deleted = false
            if r.remaining > 0 {
                let flags = try r.u8()
                guard flags != 0, flags & ~31 == 0 else { throw StoreError.malformedRecord(table: "messages", detail: "flags") }
                if flags & 1 != 0 { replyTo = try r.bytes16() }
                if flags & 2 != 0 { attachment = try AttachmentPointer(from: &r) }
                if flags & 4 != 0 {
                    for _ in 0..<Int(try r.u16()) {
                        let until = try r.u64()
                        earlierTexts.append(EarlierText(text: try string(try r.bytes32()), until: until))
                    }
                }
                deleted = flags & 8 != 0
                if flags & 16 != 0 {
                    for _ in 0..<Int(try r.u16()) { reactions.append(Reaction(author: try string(try r.bytes16()), emoji: try string(try r.bytes16()))) }
                }
            }
            try r.finish()
            var record = MessageRecord(conversation: conversation, direction: direction, sender: sender, clientMessageId: clientId,
                                       sentAt: sentAt, receivedAt: receivedAt, text: text, state: state,
                                       replyTo: replyTo, attachment: attachment)
            record.id = id
            record.earlierTexts = earlierTexts
            record.deleted = deleted
            record.reactions = reactions
            return record
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "messages", detail: "\(error)")
        }
    }

    /// Just the text of a message body (search reads nothing else).
    static func text(of bytes: [UInt8]) -> String? {
        guard let range = textRange(of: bytes) else { return nil }
        return String(validating: bytes[range], as: UTF8.self)
    }

    /// Where the text of a message body lies, found without copying any field: the fields before it are
    /// only stepped over (version 1, direction, conversation, sender address, device id, client message
    /// id, sent and received times). Trailing bytes are not looked at. Nil for a body `text(of:)` refuses.
    static func textRange(of bytes: [UInt8]) -> Range<Int>? {
        var offset = 0
        /// Steps over `n` bytes; false when fewer are left.
        func skip(_ n: Int) -> Bool {
            guard n >= 0, bytes.count - offset >= n else { return false }
            offset += n
            return true
        }
        /// A big-endian length of `width` bytes.
        func length(_ width: Int) -> Int? {
            guard bytes.count - offset >= width else { return nil }
            var value = 0
            for i in 0..<width { value = value << 8 | Int(bytes[offset + i]) }
            offset += width
            return value
        }
        guard bytes.count >= 2, bytes[0] == version else { return nil }
        offset = 2
        guard let conversation = length(2), skip(conversation), let sender = length(2), skip(sender), skip(4),
              let clientId = length(2), skip(clientId), skip(16), let text = length(4) else { return nil }
        let start = offset
        guard skip(text) else { return nil }
        return start..<offset
    }

    static func encode(_ m: ReceivedMessage) -> [UInt8] {
        var w = ByteWriter(capacity: 256 + m.content.count)
        w.u8(version)
        w.bytes16(Array(m.sender.address.utf8))
        w.u32(m.sender.deviceId)
        w.bytes16(m.certificate.encoded)
        w.bytes32(m.content)
        w.bool(m.startedSession)
        return w.bytes
    }

    static func decodeReceived(_ bytes: [UInt8]) throws(StoreError) -> ReceivedMessage {
        do {
            var r = ByteReader(bytes, structure: "inbox entry")
            guard try r.u8() == version else { throw StoreError.malformedRecord(table: "inbox", detail: "unknown version") }
            let sender = DeviceAddress(address: try string(try r.bytes16()), deviceId: try r.u32())
            let certificate = try SenderCertificate(decoding: try r.bytes16())
            let content = try r.bytes32()
            let started = try r.bool()
            try r.finish()
            return ReceivedMessage(sender: sender, certificate: certificate, content: content, startedSession: started)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "inbox", detail: "\(error)")
        }
    }

    /// An outbox row: the envelope, its batch, and the content it carries (kept so that a send the relay
    /// refused for a changed device list can be encrypted again for the new list).
    static func encode(_ e: OutgoingEnvelope, content: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 64 + e.envelope.count + content.count)
        w.u8(version)
        w.bytes16(Array(e.recipient.address.utf8))
        w.u32(e.recipient.deviceId)
        w.bytes32(e.envelope)
        w.bytes16(e.batch)
        w.bytes32(content)
        return w.bytes
    }

    static func decodeOutgoing(_ bytes: [UInt8]) throws(StoreError) -> (envelope: OutgoingEnvelope, content: [UInt8]) {
        do {
            var r = ByteReader(bytes, structure: "outbox entry")
            guard try r.u8() == version else { throw StoreError.malformedRecord(table: "outbox", detail: "unknown version") }
            let recipient = DeviceAddress(address: try string(try r.bytes16()), deviceId: try r.u32())
            let envelope = try r.bytes32()
            let batch = try r.bytes16()
            let content = try r.bytes32()
            try r.finish()
            return (OutgoingEnvelope(recipient: recipient, envelope: envelope, batch: batch), content)
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "outbox", detail: "\(error)")
        }
    }

    static func string(_ bytes: [UInt8]) throws(ProtocolError) -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .malformed("text is not UTF-8") }
        return s
    }
}
