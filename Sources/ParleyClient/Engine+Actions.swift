import ParleyProtocol
import ParleyStore

/// Reactions, edits and deletes for everyone (Content types 0x06–0x08): sent to the conversation's peer and
/// this account's other devices like a message, and applied to this device's copy in the transaction that
/// puts them in the outbox (in a group: one group message, Engine+GroupContents.swift). Whether the user may act on the message is the caller's check (Operations);
/// every receiver checks again.
extension Engine {
    /// Reacts to `target` (a message of `conversation` written by `targetAuthor`) with `emoji`, replacing
    /// this account's earlier reaction to it; `remove` takes it away. Returns the message as stored after.
    @discardableResult
    public func react(_ emoji: String, to target: [UInt8], by targetAuthor: AccountAddress, in conversation: ConversationId,
                      remove: Bool = false) async throws -> MessageRecord? {
        try await sendAction(.reaction(emoji: emoji, targetAuthor: targetAuthor.description, target: target, remove: remove),
                             in: conversation, target: target, by: targetAuthor)
    }

    /// Replaces the text of this account's message `target`; the earlier text stays in its history.
    @discardableResult
    public func edit(_ target: [UInt8], in conversation: ConversationId, text: String) async throws -> MessageRecord? {
        try await sendAction(.edit(target: target, text: text), in: conversation, target: target, by: ownAddress)
    }

    /// Deletes this account's message `target` for everyone.
    @discardableResult
    public func deleteForEveryone(_ target: [UInt8], in conversation: ConversationId) async throws -> MessageRecord? {
        try await sendAction(.delete(target: target), in: conversation, target: target, by: ownAddress)
    }

    private func sendAction(_ body: Content.Body, in conversation: ConversationId, target: [UInt8],
                            by author: AccountAddress) async throws -> MessageRecord? {
        if case .group(let id) = conversation { return try await sendAction(body, inGroup: id, target: target, by: author) }
        let peer = try Self.recipient(of: conversation)
        try refuseIfBlocked(peer)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation, body: body)
        try checkFits(content)
        try await send(content, to: peer)
        return try store.message(sentBy: author, clientMessageId: target)
    }
}
