import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// Sending: messages and files, receipts, typing, and the messages the relay did not take.
extension Operations {
    /// What a sent message replies to: a message id, or the message with a timestamp in the conversation
    /// (signal-cli's quoteTimestamp, optionally with the quoted message's author).
    public enum ReplyTarget: Sendable {
        case id([UInt8])
        case timestamp(UInt64, author: AccountAddress?)
    }

    public struct SendRequest: Sendable {
        public var recipients: [AccountAddress]
        /// The text, or the attachment's caption (may be empty with an attachment).
        public var text: String
        /// A file to send (one per message): a path, or an RFC 2397 `data:` URI.
        public var attachment: String?
        public var replyTo: ReplyTarget?

        public init(recipients: [AccountAddress], text: String, attachment: String? = nil, replyTo: ReplyTarget? = nil) {
            self.recipients = recipients
            self.text = text
            self.attachment = attachment
            self.replyTo = replyTo
        }
    }

    /// Sends to each recipient. A message the relay could not take now is saved in the outbox: its result
    /// is PENDING (the outbox retries it). With one recipient a failure is thrown; with several it is that
    /// recipient's FAILURE result.
    public func send(_ request: SendRequest) async throws -> SendResult {
        guard !request.text.isEmpty || request.attachment != nil else {
            throw OperationError.invalidInput("the message is empty and there is no attachment")
        }
        if let attachment = request.attachment, DataURI.isDataURI(attachment) {
            // An inline file: decoded (after its size was checked) into a private file for this send only.
            let inline = try DataURI.parse(attachment)
            return try await inline.withTemporaryFile { path in
                var onDisk = request
                onDisk.attachment = path
                return try await send(onDisk)
            }
        }
        // The file on disk (an inline one once decoded, by the call above) against the policy's attachments.
        if let file = request.attachment { try checkPolicyAllowsAttaching(file) }
        var results: [RecipientResult] = []
        for recipient in request.recipients {
            do {
                try checkPolicyAllowsSending(to: recipient)
                let replyTo = try request.replyTo.map { try replyTarget($0, in: recipient) }
                let record = if let file = request.attachment {
                    try await engine.sendAttachment(file: file, to: recipient, caption: request.text.isEmpty ? nil : request.text, replyTo: replyTo)
                } else {
                    try await engine.send(text: request.text, to: recipient, replyTo: replyTo)
                }
                results.append(Self.sent(record, recipient, type: record.state == .pending ? .pending : .success))
            } catch {
                if let record = pendingAfter(error, to: recipient) {
                    var result = Self.sent(record, recipient, type: .pending)
                    result.pendingBecause = ErrorObject(error)
                    results.append(result)
                } else if request.recipients.count == 1 {
                    throw error
                } else {
                    results.append(RecipientResult(recipient: recipient.description, id: nil, timestamp: nil, state: nil, type: .failure,
                                                   error: ErrorObject(error)))
                }
            }
        }
        let first = results.first { $0.id != nil }
        return SendResult(timestamp: first?.timestamp, id: first?.id, results: results)
    }

    /// The message a failed send left in the outbox: the relay could not take it now (it is retried). A
    /// revoked device's message never goes out, so it is not pending.
    func pendingAfter(_ error: any Error, to recipient: AccountAddress) -> MessageRecord? {
        guard let error = error as? ClientError, error.category == .relayOrNetwork else { return nil }
        if case .deviceRevoked = error { return nil }
        guard let record = try? history(with: recipient, limit: 1).last, record.state == .pending else { return nil }
        return record
    }

    static func sent(_ record: MessageRecord, _ recipient: AccountAddress, type: RecipientResult.Outcome) -> RecipientResult {
        RecipientResult(recipient: recipient.description, id: Hex.encode(record.clientMessageId), timestamp: record.sentAt,
                        state: "\(record.state)", type: type, error: nil)
    }

    func replyTarget(_ target: ReplyTarget, in conversation: AccountAddress) throws -> [UInt8] {
        try replyTarget(target, in: .direct(conversation))
    }

    func replyTarget(_ target: ReplyTarget, in conversation: ConversationId) throws -> [UInt8] {
        switch target {
        case .id(let id): return id
        case .timestamp(let timestamp, let author):
            guard let quoted = try engine.messages(in: conversation, limit: 10_000).last(where: {
                $0.sentAt == timestamp && $0.direction != .system && (author == nil || $0.sender.address == author?.description)
            }) else {
                let place = conversation.group.map { "group \($0.hex)" } ?? "the conversation with \(conversation)"
                throw OperationError.refused("no message with the timestamp \(timestamp) in \(place)")
            }
            return quoted.clientMessageId
        }
    }

    /// A read (or delivery) receipt for the contact's messages named by id or by timestamp.
    public func sendReceipt(to recipient: AccountAddress, read: Bool, messageIds: [[UInt8]] = [], timestamps: [UInt64] = []) async throws -> ReceiptResult {
        var ids = messageIds
        if !timestamps.isEmpty {
            let wanted = Set(timestamps)
            let found = try history(with: recipient, limit: 10_000).filter { $0.direction == .incoming && wanted.contains($0.sentAt) }
            let missing = wanted.subtracting(found.map(\.sentAt))
            guard missing.isEmpty else {
                throw OperationError.refused("no message from \(recipient) has the timestamp \(missing.sorted().map(String.init).joined(separator: ", "))")
            }
            ids += found.map(\.clientMessageId)
        }
        guard !ids.isEmpty else { throw OperationError.invalidInput("give the messages' timestamps or ids") }
        try await engine.sendReceipt(to: recipient, read: read, messageIds: ids)
        return ReceiptResult(recipient: recipient.description, messageIds: ids.map(Hex.encode))
    }

    /// A read (or delivery) receipt for messages of the group, named by id or by timestamp: one group
    /// message, which every member sees (PROTOCOL.md §17.7).
    public func sendReceipt(inGroup id: GroupId, read: Bool, messageIds: [[UInt8]] = [], timestamps: [UInt64] = []) async throws -> ReceiptResult {
        try checkPolicyAllowsSending(toGroup: id)
        var ids = messageIds
        if !timestamps.isEmpty {
            let wanted = Set(timestamps)
            let found = try engine.messages(in: .group(id), limit: 10_000).filter { $0.direction == .incoming && wanted.contains($0.sentAt) }
            let missing = wanted.subtracting(found.map(\.sentAt))
            guard missing.isEmpty else {
                throw OperationError.refused("no message of the group has the timestamp \(missing.sorted().map(String.init).joined(separator: ", "))")
            }
            ids += found.map(\.clientMessageId)
        }
        guard !ids.isEmpty else { throw OperationError.invalidInput("give the messages' timestamps or ids") }
        try await engine.sendReceipt(toGroup: id, read: read, messageIds: ids)
        return ReceiptResult(recipient: ConversationId.group(id).description, messageIds: ids.map(Hex.encode))
    }

    /// Tells every member of the group that this account started (or stopped) typing there.
    public func sendTyping(inGroup id: GroupId, stop: Bool) async throws -> TypingResult {
        try checkPolicyAllowsSending(toGroup: id)
        try await engine.sendTyping(toGroup: id, started: !stop)
        return TypingResult(recipients: [ConversationId.group(id).description], stop: stop)
    }

    public func sendTyping(to recipients: [AccountAddress], stop: Bool) async throws -> TypingResult {
        for recipient in recipients { try await engine.sendTyping(to: recipient, started: !stop) }
        return TypingResult(recipients: recipients.map(\.description), stop: stop)
    }

    /// Sends the newest failed message of the conversation again (as a new message; the failed copy goes).
    @discardableResult
    public func retryFailed(with peer: AccountAddress) async throws -> MessageRecord {
        try await engine.resend(try await newestFailed(with: peer))
    }

    /// Deletes the newest failed message of the conversation.
    public func deleteFailed(with peer: AccountAddress) async throws {
        try await engine.discard(try await newestFailed(with: peer))
    }

    /// The newest `limit` messages of the conversation with `recipient`.
    func history(with recipient: AccountAddress, limit: Int) throws -> [MessageRecord] {
        try engine.messages(in: .direct(recipient), limit: limit)
    }

    func newestFailed(with peer: AccountAddress) async throws -> MessageRecord {
        guard let failed = try await engine.newestFailed(in: .direct(peer)) else { throw OperationError.refused("no failed message in this conversation") }
        return failed
    }
}
