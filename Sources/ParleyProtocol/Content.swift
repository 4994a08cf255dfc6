import ParleyCrypto

/// The application content inside the ratchet (PROTOCOL.md §12). One encoding for every device: the
/// same bytes go to the peer's devices and to the sender's own other devices, which is why `destination`
/// names the conversation (the receiving device files a message from its own account under
/// `destination`, any other under the sender). On the wire `destination` is text (protocol v2); inside
/// Parley it is a `ConversationId` (`conversation`), mapped here and nowhere else.
public struct Content: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        case text(String)
        /// Delivery (`read == false`) or read receipts for earlier messages, by client message id.
        case receipt(read: Bool, messageIds: [[UInt8]])
        case typing(started: Bool)
        /// A text with a quoted earlier message (by client message id) and/or an attachment; a plain text
        /// without either is sent as `.text`.
        case message(text: String, replyTo: [UInt8]?, attachment: AttachmentPointer?)
        /// Sent only to this account's own other devices: the user's trust decision about a contact's
        /// account key (`state`: 0 unverified, 1 verified, 2 changed, 3 untrusted), so every device agrees.
        case trustDecision(address: String, accountKey: [UInt8], state: UInt8)
        /// `emoji` on the message `target` of `targetAuthor` (an account address as text), replacing the
        /// sender's earlier reaction to it; `remove` takes the sender's reaction away.
        case reaction(emoji: String, targetAuthor: String, target: [UInt8], remove: Bool)
        /// A new text for the sender's own message `target` (its earlier texts stay in its history).
        case edit(target: [UInt8], text: String)
        /// Deletes the sender's own message `target` for everyone.
        case delete(target: [UInt8])
        /// Inside a group's MLS application message only (PROTOCOL.md §17.6): the group's name, as its
        /// member set or renamed it. Sent after the group is made, renamed, or joined by new members.
        case groupName(String)
        /// Inside a group's MLS application message only (PROTOCOL.md §17.9): the group's GroupInfo key and
        /// the epoch it was derived in, sent to new members after the commit that adds them (members that
        /// were there derive it themselves).
        case groupInfoKey(epoch: UInt64, key: [UInt8])
        /// The conversation's disappearing-message timer, in seconds (0: off), set by the sender; also sent
        /// to the sender's own other devices so every device of both accounts agrees.
        case disappearingTimer(seconds: UInt32)
        /// Sent only to this account's own other devices, by a device that has its KeyPackages on the relay
        /// (a device just linked): add me to the account's groups now (PROTOCOL.md §17.8). Carries nothing:
        /// the sending device is the one the sender certificate names.
        case deviceReady
        /// 1:1, from a device of the group `group` that cannot rejoin it because a commit it could not apply
        /// changed the group's GroupInfo key (PROTOCOL.md §17.9): send me the current key.
        case groupInfoKeyRequest(group: GroupId)
        /// 1:1, the answer: the current GroupInfo key of `group` and the epoch it was derived in, sent only to
        /// a device that still has a leaf in the sender's tree of the group.
        case groupInfoKeyAnswer(group: GroupId, epoch: UInt64, key: [UInt8])

        /// The text shown for a message body (a caption for an attachment), nil for control contents.
        public var displayText: String? {
            switch self {
            case .text(let text), .message(let text, _, _): text
            case .receipt, .typing, .trustDecision, .reaction, .edit, .delete, .groupName, .groupInfoKey, .disappearingTimer,
                 .deviceReady, .groupInfoKeyRequest, .groupInfoKeyAnswer: nil
            }
        }
    }

    public static let messageIdLength = MessageId.length
    /// The longest reaction a receiver takes, in UTF-8 bytes: room for one emoji with its modifiers and
    /// joiners (a family with skin tones is 35 bytes), not for a text.
    public static let maxEmojiBytes = 64
    public static let groupInfoKeyLength = 32

    /// Random per message, the same on every device; receivers drop repeats of (sender, id).
    public let messageId: [UInt8]
    public let sentAt: UInt64
    public let destination: String
    public let body: Body
    /// The sender's account's delivery access key (PROTOCOL.md §13.1), carried until the receiver has it:
    /// what lets the receiver send it sealed envelopes. Flagged by the type byte's high bit and placed
    /// after the body.
    public let deliveryAccess: [UInt8]?
    /// The disappearing-message timer (seconds) the message was sent under, as Signal's `expireTimer`: the
    /// receiver deletes the message that long after it arrives, and adopts the timer for the conversation
    /// when it differs, so a lost `disappearingTimer` content cannot leave one side keeping history. Flagged
    /// by the type byte's bit 0x40 and placed after the body (before the delivery access key).
    public let expireTimer: UInt32?

    public init(messageId: [UInt8], sentAt: UInt64, destination: String, body: Body, deliveryAccess: [UInt8]? = nil,
                expireTimer: UInt32? = nil) {
        precondition(messageId.count == Self.messageIdLength)
        precondition(deliveryAccess == nil || deliveryAccess?.count == DeliveryAccess.keyLength)
        self.messageId = messageId
        self.sentAt = sentAt
        self.destination = destination
        self.body = body
        self.deliveryAccess = deliveryAccess
        self.expireTimer = expireTimer == 0 ? nil : expireTimer
    }

    /// A content for `conversation`: its `destination` is the conversation's wire text.
    public init(messageId: [UInt8], sentAt: UInt64, conversation: ConversationId, body: Body, deliveryAccess: [UInt8]? = nil,
                expireTimer: UInt32? = nil) {
        self.init(messageId: messageId, sentAt: sentAt, destination: conversation.destination, body: body, deliveryAccess: deliveryAccess,
                  expireTimer: expireTimer)
    }

    /// The conversation `destination` names, or nil when it names none (another device may write anything).
    public var conversation: ConversationId? { try? ConversationId(destination: destination) }

    /// The same content carrying `key`.
    public func carrying(deliveryAccess key: [UInt8]) -> Content {
        Content(messageId: messageId, sentAt: sentAt, destination: destination, body: body, deliveryAccess: key, expireTimer: expireTimer)
    }

    private static let carriesDeliveryAccess: UInt8 = 0x80
    private static let carriesExpireTimer: UInt8 = 0x40

    public static func newMessageId(random: any RandomSource = SystemRandom()) -> [UInt8] { MessageId.random(random).bytes }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(ProtocolConstants.version)
        let flag = (deliveryAccess == nil ? 0 : Self.carriesDeliveryAccess) | (expireTimer == nil ? 0 : Self.carriesExpireTimer)
        switch body {
        case .text: w.u8(0x01 | flag)
        case .receipt: w.u8(0x02 | flag)
        case .typing: w.u8(0x03 | flag)
        case .message: w.u8(0x04 | flag)
        case .trustDecision: w.u8(0x05 | flag)
        case .reaction: w.u8(0x06 | flag)
        case .edit: w.u8(0x07 | flag)
        case .delete: w.u8(0x08 | flag)
        case .groupName: w.u8(0x0A | flag)
        case .groupInfoKey: w.u8(0x0C | flag)
        case .disappearingTimer: w.u8(0x09 | flag)
        case .deviceReady: w.u8(0x0B | flag)
        case .groupInfoKeyRequest: w.u8(0x0D | flag)
        case .groupInfoKeyAnswer: w.u8(0x0E | flag)
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
        case .message(let text, let replyTo, let attachment):
            w.bytes32(Array(text.utf8))
            w.u8((replyTo == nil ? 0 : 1) | (attachment == nil ? 0 : 2))
            if let replyTo { w.raw(replyTo) }
            attachment?.encode(into: &w)
        case .trustDecision(let address, let accountKey, let state):
            w.bytes16(Array(address.utf8))
            w.raw(accountKey)
            w.u8(state)
        case .reaction(let emoji, let targetAuthor, let target, let remove):
            w.bytes16(Array(targetAuthor.utf8))
            w.raw(target)
            w.bytes16(Array(emoji.utf8))
            w.bool(remove)
        case .edit(let target, let text):
            w.raw(target)
            w.bytes32(Array(text.utf8))
        case .delete(let target):
            w.raw(target)
        case .groupName(let name): w.bytes16(Array(name.utf8))
        case .groupInfoKey(let epoch, let key):
            w.u64(epoch)
            w.raw(key)
        case .disappearingTimer(let seconds):
            w.u32(seconds)
        case .deviceReady: break
        case .groupInfoKeyRequest(let group): w.raw(group.bytes)
        case .groupInfoKeyAnswer(let group, let epoch, let key):
            w.raw(group.bytes)
            w.u64(epoch)
            w.raw(key)
        }
        if let expireTimer { w.u32(expireTimer) }
        if let deliveryAccess { w.raw(deliveryAccess) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "Content")
        try r.version()
        let typeByte = try r.u8()
        let type = typeByte & ~(Self.carriesDeliveryAccess | Self.carriesExpireTimer)
        messageId = try MessageId(from: &r).bytes
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
            for _ in 0..<Int(try r.u16()) { ids.append(try MessageId(from: &r).bytes) }
            body = .receipt(read: read, messageIds: ids)
        case 0x03:
            body = .typing(started: try r.bool())
        case 0x04:
            guard let text = String(validating: try r.bytes32(), as: UTF8.self) else { throw .malformed("Content: text is not UTF-8") }
            let flags = try r.u8()
            guard flags & ~3 == 0 else { throw .malformed("Content: unknown message flags \(flags)") }
            let replyTo = flags & 1 != 0 ? try MessageId(from: &r).bytes : nil
            let attachment = flags & 2 != 0 ? try AttachmentPointer(from: &r) : nil
            body = .message(text: text, replyTo: replyTo, attachment: attachment)
        case 0x05:
            guard let address = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("Content: trust address") }
            let key = try r.raw(Ed25519.publicKeyLength)
            let state = try r.u8()
            guard state <= 3 else { throw .malformed("Content: trust state \(state)") }
            body = .trustDecision(address: address, accountKey: key, state: state)
        case 0x06:
            guard let author = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("Content: reaction author") }
            let target = try MessageId(from: &r).bytes
            let emojiBytes = try r.bytes16()
            guard (1...Self.maxEmojiBytes).contains(emojiBytes.count), let emoji = String(validating: emojiBytes, as: UTF8.self) else {
                throw .malformed("Content: reaction emoji")
            }
            body = .reaction(emoji: emoji, targetAuthor: author, target: target, remove: try r.bool())
        case 0x07:
            let target = try MessageId(from: &r).bytes
            guard let text = String(validating: try r.bytes32(), as: UTF8.self) else { throw .malformed("Content: text is not UTF-8") }
            body = .edit(target: target, text: text)
        case 0x08:
            body = .delete(target: try MessageId(from: &r).bytes)
        case 0x0A:
            guard let name = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("Content: group name is not UTF-8") }
            body = .groupName(name)
        case 0x0C:
            body = .groupInfoKey(epoch: try r.u64(), key: try r.raw(Self.groupInfoKeyLength))
        case 0x09:
            body = .disappearingTimer(seconds: try r.u32())
        case 0x0B:
            body = .deviceReady
        case 0x0D:
            body = .groupInfoKeyRequest(group: try GroupId(try r.raw(GroupId.length)))
        case 0x0E:
            body = .groupInfoKeyAnswer(group: try GroupId(try r.raw(GroupId.length)), epoch: try r.u64(), key: try r.raw(Self.groupInfoKeyLength))
        default:
            throw .malformed("Content: unknown type \(type)")
        }
        if typeByte & Self.carriesExpireTimer != 0 {
            let timer = try r.u32()
            guard timer != 0 else { throw .malformed("Content: an expire timer of 0 (no timer is sent without the flag)") }
            expireTimer = timer
        } else {
            expireTimer = nil
        }
        deliveryAccess = typeByte & Self.carriesDeliveryAccess != 0 ? try r.raw(DeliveryAccess.keyLength) : nil
        try r.finish()
    }
}
