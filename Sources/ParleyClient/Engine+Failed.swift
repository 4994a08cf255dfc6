import ParleyProtocol
import ParleyStore

/// Messages the relay refused for good are marked failed in their conversation (see the outbox drain);
/// the user sends one again or deletes it.
extension Engine {
    /// The newest failed message this account sent in `conversation`, if any.
    public func newestFailed(in conversation: ConversationId) throws -> MessageRecord? {
        try store.messages(in: conversation, limit: 200).last { $0.direction == .outgoing && $0.state == .failed }
    }

    /// Sends `failed` again as a new message (same text, reply and attachment) and removes the failed one
    /// once the new one is stored, so the conversation shows it once. Throws like `send`.
    @discardableResult
    public func resend(_ failed: MessageRecord) async throws -> MessageRecord {
        guard failed.direction == .outgoing, failed.state == .failed else { throw ClientError.notFailed }
        let body: Content.Body = failed.replyTo == nil && failed.attachment == nil
            ? .text(failed.text) : .message(text: failed.text, replyTo: failed.replyTo, attachment: failed.attachment)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(),
                              conversation: failed.conversation, body: body)
        try checkFits(content)
        do {
            _ = try await send(content, to: try Self.recipient(of: failed.conversation))
        } catch {
            if try store.message(sentBy: ownAddress, clientMessageId: content.messageId) != nil { try discard(failed) }
            throw error
        }
        try discard(failed)
        return try store.message(sentBy: ownAddress, clientMessageId: content.messageId)
            ?? MessageRecord(conversation: failed.conversation, direction: .outgoing, sender: account.deviceAddress,
                             clientMessageId: content.messageId, sentAt: content.sentAt, receivedAt: content.sentAt,
                             text: failed.text, state: .pending, replyTo: failed.replyTo, attachment: failed.attachment)
    }

    /// Deletes a failed message of this account from its conversation.
    public func discard(_ failed: MessageRecord) throws {
        guard failed.direction == .outgoing, failed.state == .failed else { throw ClientError.notFailed }
        try store.deleteMessage(sentBy: ownAddress, clientMessageId: failed.clientMessageId)
    }
}
