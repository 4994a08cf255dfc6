internal import GRDB
import ParleyProtocol

/// A text a message had before its author edited it, and when it was replaced.
public struct EarlierText: Sendable, Equatable {
    public let text: String
    /// The `sentAt` of the edit that replaced it (ms).
    public let until: UInt64

    public init(text: String, until: UInt64) {
        self.text = text
        self.until = until
    }
}

/// One person's reaction to a message (one per person: a new one replaces theirs).
public struct Reaction: Sendable, Equatable {
    /// The reacting account's address.
    public let author: String
    /// As the peer sent it: neutralise it (PeerText) before it is shown.
    public let emoji: String

    public init(author: String, emoji: String) {
        self.author = author
        self.emoji = emoji
    }
}

/// A reaction, an edit or a delete for everyone (Content types 0x06–0x08, PROTOCOL.md §12.2), as it applies
/// to a stored message: by whom, on which message of which conversation.
public struct MessageAction: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        case react(emoji: String, remove: Bool)
        case edit(text: String)
        case delete
    }

    public let change: Change
    /// Who reacted, edited or deleted.
    public let actor: AccountAddress
    /// The author of the message acted on: for an edit or a delete always the actor.
    public let targetAuthor: AccountAddress
    public let target: [UInt8]
    /// The conversation the action came in (or was sent to); the target must be a message of it.
    public let conversation: ConversationId
    /// The action's `sentAt`.
    public let at: UInt64

    public init(change: Change, actor: AccountAddress, targetAuthor: AccountAddress, target: [UInt8], conversation: ConversationId, at: UInt64) {
        self.change = change
        self.actor = actor
        self.targetAuthor = targetAuthor
        self.target = target
        self.conversation = conversation
        self.at = at
    }

    /// The action `content` carries, sent by `actor` in `conversation`; nil for any other content, and for a
    /// reaction whose target author is no account address.
    public init?(content: Content, actor: AccountAddress, conversation: ConversationId) {
        switch content.body {
        case .reaction(let emoji, let author, let target, let remove):
            guard let author = try? AccountAddress(author) else { return nil }
            self.init(change: .react(emoji: emoji, remove: remove), actor: actor, targetAuthor: author, target: target,
                      conversation: conversation, at: content.sentAt)
        case .edit(let target, let text):
            self.init(change: .edit(text: text), actor: actor, targetAuthor: actor, target: target, conversation: conversation, at: content.sentAt)
        case .delete(let target):
            self.init(change: .delete, actor: actor, targetAuthor: actor, target: target, conversation: conversation, at: content.sentAt)
        default:
            return nil
        }
    }
}

extension MessageRecord {
    /// This message with `action` applied, or nil when the action does not apply to it: an edit or a delete
    /// by anyone but the author, anything but a reaction removal on a deleted message, another conversation.
    func applying(_ action: MessageAction) -> MessageRecord? {
        guard action.conversation == conversation, sender.address == action.targetAuthor.description, direction != .system else { return nil }
        var changed = self
        switch action.change {
        case .react(let emoji, let remove):
            let author = action.actor.description
            let index = reactions.firstIndex { $0.author == author }
            if remove {
                guard let index else { return nil }
                changed.reactions.remove(at: index)
            } else {
                guard !deleted else { return nil }
                if let index { changed.reactions[index] = Reaction(author: author, emoji: emoji) } else {
                    changed.reactions.append(Reaction(author: author, emoji: emoji))
                }
            }
        case .edit(let text):
            guard action.actor == action.targetAuthor, !deleted else { return nil }
            changed.earlierTexts.append(EarlierText(text: self.text, until: action.at))
            changed.text = text
        case .delete:
            guard action.actor == action.targetAuthor, !deleted else { return nil }
            changed.deleted = true
            changed.text = ""
            changed.attachment = nil
            changed.replyTo = nil
            changed.earlierTexts = []
            changed.reactions = []
        }
        return changed
    }
}

extension EncryptedStore {
    /// Applies `action` to the message it names (found by its author and client message id, so an edit or
    /// a delete can only reach the actor's own messages). Returns the message as stored afterwards, or nil
    /// when there is no such message or the action does not apply to it (refused: nothing changes).
    @discardableResult
    public func apply(_ action: MessageAction) throws(StoreError) -> MessageRecord? {
        try write { db in try apply(action, db) }
    }

    func apply(_ action: MessageAction, _ db: Database) throws -> MessageRecord? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT id, body, state FROM messages WHERE dedupe = ?"),
                                         arguments: [dedupeKey(action.targetAuthor.description, action.target)]) else { return nil }
        guard let changed = try decodeMessage(row).applying(action) else { return nil }
        try db.cachedStatement(sql: "UPDATE messages SET body = ? WHERE id = ?").execute(
            arguments: [seal(RecordCodec.encode(changed), "messages", "body", .id(changed.id)), changed.id])
        return changed
    }
}
