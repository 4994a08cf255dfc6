import Foundation
import ParleyProtocol
import ParleyStore

/// What a group message carries besides its name (PROTOCOL.md §17.7): messages with replies and attachments,
/// receipts, typing, reactions, edits, deletes and the disappearing-message timer. Each is one MLS
/// application message to every device of the group (this account's other devices included), its sender
/// the leaf's device; what it changes is stored in the transaction that saves the state that decrypted it.
extension Engine {
    // MARK: Sending

    /// Sends a text-like body (a plain text when it has neither a reply nor an attachment) to every device of
    /// the group but this one, under the group's disappearing-message timer. The message is stored (pending)
    /// with the state that encrypted it before it leaves, so that a key of the group's ratchet never
    /// encrypts twice. Returns it as stored.
    func send(_ body: Content.Body, toGroup id: GroupId) async throws -> MessageRecord {
        var body = body
        if case .message(let text, nil, nil) = body { body = .text(text) }
        let conversation = ConversationId.group(id)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation, body: body,
                              expireTimer: outgoingTimer(conversation))
        try checkFits(content)
        defer { if content.expireTimer != nil { rescheduleExpiry() } }
        var replyTo: [UInt8]?, attachment: AttachmentPointer?
        if case .message(_, let quoted, let pointer) = body { (replyTo, attachment) = (quoted, pointer) }
        let record = MessageRecord(conversation: conversation, direction: .outgoing, sender: account.deviceAddress,
                                   clientMessageId: content.messageId, sentAt: content.sentAt, receivedAt: content.sentAt,
                                   text: body.displayText ?? "", state: .pending, replyTo: replyTo, attachment: attachment,
                                   expiresAt: content.expireTimer.map { content.sentAt + UInt64($0) * 1000 })
        try await sendGroupMessage(to: id, filing: [.message(record)]) { group in try group.encrypt(content.encoded, padding: 32) }
        return try store.message(sentBy: ownAddress, clientMessageId: content.messageId) ?? record
    }

    /// Encrypts and uploads the file at `path` once, to this account's relay, then sends its pointer (key and
    /// digest, with an optional caption) in one group message: every member downloads the same blob.
    /// Nothing is sent if the group is not one this device is in, the file cannot be read or the upload fails.
    @discardableResult
    public func sendAttachment(file path: String, toGroup id: GroupId, caption: String? = nil, replyTo: [UInt8]? = nil) async throws -> MessageRecord {
        guard try store.group(id)?.active == true else { throw ClientError.unknownGroup(id.hex) }
        let fileName = (path as NSString).lastPathComponent, contentType = Self.contentType(forFileName: path)
        // A caption too long for the message is refused before the file is read or uploaded.
        let stand = AttachmentPointer(id: String(repeating: "0", count: 64), key: [UInt8](repeating: 0, count: 32), size: 0,
                                      digest: [UInt8](repeating: 0, count: 32), fileName: fileName, contentType: contentType)
        try checkFits(Content(messageId: Content.newMessageId(), sentAt: 0, conversation: .group(id),
                              body: .message(text: caption ?? "", replyTo: replyTo, attachment: stand)))
        let plaintext = try Self.readAttachment(path)
        let pointer = try await upload(plaintext, fileName: fileName, contentType: contentType)
        return try await send(.message(text: caption ?? "", replyTo: replyTo, attachment: pointer), toGroup: id)
    }

    /// A delivery or read receipt for messages of the group, as one group message: every member sees it (the
    /// authors advance their messages, this account's other devices mark them read). At most
    /// `receiptIdsPerContent` ids per message.
    public func sendReceipt(toGroup id: GroupId, read: Bool, messageIds: [[UInt8]]) async throws {
        for start in stride(from: 0, to: messageIds.count, by: Self.receiptIdsPerContent) {
            let chunk = Array(messageIds[start..<min(messageIds.count, start + Self.receiptIdsPerContent)])
            try await sendGroupContent(.receipt(read: read, messageIds: chunk), to: id)
        }
    }

    public func sendTyping(toGroup id: GroupId, started: Bool) async throws {
        try await sendGroupContent(.typing(started: started), to: id)
    }

    /// Sets the group's disappearing-message timer (nil: off) for every member: sent first, then adopted here
    /// with its notice (a group message has no outbox to retry it, so a failed send changes nothing). The
    /// caller checks the policy.
    @discardableResult
    public func setDisappearingTimer(_ seconds: UInt32?, inGroup id: GroupId) async throws -> MessageRecord {
        try await sendGroupContent(.disappearingTimer(seconds: seconds ?? 0), to: id)
        let (notice, events) = try adoptTimer(seconds, in: .group(id), by: ownAddress)
        for event in events { emit(event) }
        return notice
    }

    /// A reaction, edit or delete in a group: applied to this device's copy in the transaction that saves the
    /// state that encrypted it; every other device applies it when it arrives, if the sender may.
    func sendAction(_ body: Content.Body, inGroup id: GroupId, target: [UInt8], by author: AccountAddress) async throws -> MessageRecord? {
        let conversation = ConversationId.group(id)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation, body: body)
        try checkFits(content)
        let action = MessageAction(content: content, actor: ownAddress, conversation: conversation)
        try await sendGroupMessage(to: id, filing: action.map { [GroupFiling.action($0)] } ?? []) { group in
            try group.encrypt(content.encoded, padding: 32)
        }
        return try store.message(sentBy: author, clientMessageId: target)
    }

    /// Marks the group's unread messages read, and (with `sendReadReceipts`) says so in one group message,
    /// which tells their authors and this account's other devices. Returns how many there were.
    func markRead(group id: GroupId, sendReadReceipts: Bool) async throws -> Int {
        let conversation = ConversationId.group(id)
        let unread = try store.unreadMessages(in: conversation)
        guard !unread.isEmpty else { return 0 }
        for (author, ids) in Self.byAuthor(unread) { try store.advanceState(ofMessagesSentBy: author, ids: ids, to: .seen) }
        if sendReadReceipts, try store.group(id)?.active == true {
            try await sendReceipt(toGroup: id, read: true, messageIds: unread.map(\.clientMessageId))
        }
        return unread.count
    }

    /// The client message ids of `messages`, by author account.
    private static func byAuthor(_ messages: [MessageRecord]) -> [AccountAddress: [[UInt8]]] {
        var ids: [AccountAddress: [[UInt8]]] = [:]
        for message in messages {
            guard let author = try? message.sender.account else { continue }
            ids[author, default: []].append(message.clientMessageId)
        }
        return ids
    }

    // MARK: Receiving

    /// Files what `content` (sent by the leaf of `sender`, already checked to name this group) does, in the
    /// transaction that saves `saved`, the state that decrypted it; returns what it tells the front ends.
    /// Typing and receipts are not stored as messages. A reaction, edit or delete applies only to a message
    /// of this group, an edit or delete only to the sender's own (the store refuses anything else); a
    /// receipt from another member advances only this account's messages of this group.
    func fileGroupContent(_ content: Content, from sender: DeviceAddress, in id: GroupId, saving saved: GroupRecord) throws -> [EngineEvent] {
        let author = try sender.account
        let conversation = ConversationId.group(id), fromSelf = author == ownAddress
        switch content.body {
        case .text, .message:
            var replyTo: [UInt8]?, attachment: AttachmentPointer?
            if case .message(_, let quoted, let pointer) = content.body { (replyTo, attachment) = (quoted, pointer) }
            let now = clock.nowMilliseconds()
            let record = MessageRecord(conversation: conversation, direction: fromSelf ? .outgoing : .incoming, sender: sender,
                                       clientMessageId: content.messageId, sentAt: content.sentAt, receivedAt: now,
                                       text: content.body.displayText ?? "", state: fromSelf ? .sent : .received,
                                       replyTo: replyTo, attachment: attachment,
                                       expiresAt: expiryLimits.applied(to: content.expireTimer).map { now + UInt64($0) * 1000 })
            guard let stored = try store.saveGroup(saved, with: [.message(record)]).first ?? nil else { return [] }
            return try [.message(stored)] + adoptTimerOfMessage(content.expireTimer, in: conversation, from: author)
        case .receipt(let read, let ids) where fromSelf:
            // Another device of this account read these messages, whoever wrote them.
            guard read else {
                try store.saveGroup(saved, with: [])
                return []
            }
            let wanted = Set(ids)
            let seen = Self.byAuthor(try store.unreadMessages(in: conversation).filter { wanted.contains($0.clientMessageId) })
            try store.saveGroup(saved, with: seen.map { GroupFiling.advance(author: $0.key, messageIds: $0.value, to: .seen) })
            return [.readElsewhere(conversation: conversation, messageIds: ids)]
        case .receipt(let read, let ids):
            let own = try ids.filter { try store.message(sentBy: ownAddress, clientMessageId: $0)?.conversation == conversation }
            try store.saveGroup(saved, with: own.isEmpty ? [] : [GroupFiling.advance(author: ownAddress, messageIds: own, to: read ? .read : .delivered)])
            return own.isEmpty ? [] : [.receipt(in: conversation, from: author, read: read, messageIds: own)]
        case .typing(let started):
            try store.saveGroup(saved, with: [])
            return fromSelf ? [] : [.typing(in: conversation, from: author, started: started)]
        case .reaction, .edit, .delete:
            guard let action = MessageAction(content: content, actor: author, conversation: conversation) else {
                try store.saveGroup(saved, with: [])
                return []
            }
            guard let changed = try store.saveGroup(saved, with: [.action(action)]).first ?? nil else { return [] }
            return [.messageChanged(changed, action)]
        case .disappearingTimer(let seconds):
            try store.saveGroup(saved, with: [])
            return try adoptTimer(seconds, in: conversation, by: author).events
        case .groupName, .groupInfoKey, .trustDecision, .deviceReady, .groupInfoKeyRequest, .groupInfoKeyAnswer:
            // The name and the GroupInfo key are the caller's; a trust decision or a device's readiness travels
            // only between one account's devices (1:1), a request for the GroupInfo key and its answer only 1:1.
            try store.saveGroup(saved, with: [])
            return []
        }
    }
}
