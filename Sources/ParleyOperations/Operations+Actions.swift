import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// Reactions, edits and deletes for everyone: the `parley react/edit/delete` subcommands, the daemon's
/// `sendReaction`, `remoteDelete` and `send` with `editTimestamp`, and the chat window's selection keys.
extension Operations {
    /// The message acted on: by id or by timestamp (signal-cli's targetTimestamp), optionally with its author.
    public enum MessageTarget: Sendable, Equatable {
        case id([UInt8])
        case timestamp(UInt64, author: AccountAddress?)
    }

    /// Reacts to a message of the conversation with `contact` (either side's); `remove` takes this
    /// account's reaction away. One emoji: a new reaction replaces this account's earlier one.
    public func react(in contact: AccountAddress, to target: MessageTarget, emoji: String, remove: Bool = false) async throws -> ActionResult {
        try await react(in: .direct(contact), to: target, emoji: emoji, remove: remove)
    }

    /// Reacts to a message of `conversation` (a contact's or a group's, anyone's message in it).
    public func react(in conversation: ConversationId, to target: MessageTarget, emoji: String, remove: Bool = false) async throws -> ActionResult {
        try checkPolicyAllowsSending(in: conversation)
        try Self.checkEmoji(emoji)
        let message = try find(target, in: conversation)
        guard !message.deleted else { throw OperationError.refused("that message was deleted") }
        if remove, !message.reactions.contains(where: { $0.author == engine.ownAddress.description }) {
            throw OperationError.refused("you have not reacted to that message")
        }
        let author = try AccountAddress(message.sender.address)
        let changed = try await engine.react(emoji, to: message.clientMessageId, by: author, in: conversation, remove: remove)
        return ActionResult(conversation: conversation, target: changed ?? message)
    }

    /// Replaces the text of one of this account's messages to `contact`; the earlier text stays in its history.
    public func edit(in contact: AccountAddress, _ target: MessageTarget, text: String) async throws -> ActionResult {
        try await edit(in: .direct(contact), target, text: text)
    }

    /// Replaces the text of one of this account's messages of `conversation` (a contact's or a group's).
    public func edit(in conversation: ConversationId, _ target: MessageTarget, text: String) async throws -> ActionResult {
        try checkPolicyAllowsSending(in: conversation)
        guard !text.isEmpty else { throw OperationError.invalidInput("the new text is empty") }
        let message = try ownMessage(target, in: conversation, verb: "edit")
        let changed = try await engine.edit(message.clientMessageId, in: conversation, text: text)
        return ActionResult(conversation: conversation, target: changed ?? message)
    }

    /// Deletes one of this account's messages to `contact` for everyone: each device replaces it by "deleted".
    public func deleteForEveryone(in contact: AccountAddress, _ target: MessageTarget) async throws -> ActionResult {
        try await deleteForEveryone(in: .direct(contact), target)
    }

    /// Deletes one of this account's messages of `conversation` (a contact's or a group's) for everyone.
    public func deleteForEveryone(in conversation: ConversationId, _ target: MessageTarget) async throws -> ActionResult {
        try checkPolicyAllowsSending(in: conversation)
        let message = try ownMessage(target, in: conversation, verb: "delete")
        let changed = try await engine.deleteForEveryone(message.clientMessageId, in: conversation)
        return ActionResult(conversation: conversation, target: changed ?? message)
    }

    /// The earlier texts of a message, oldest first, then its current one.
    public func editHistory(in contact: AccountAddress, _ target: MessageTarget) throws -> [EarlierText] {
        try editHistory(in: .direct(contact), target)
    }

    public func editHistory(in conversation: ConversationId, _ target: MessageTarget) throws -> [EarlierText] {
        let message = try find(target, in: conversation)
        return message.earlierTexts + [EarlierText(text: message.text, until: 0)]
    }

    func ownMessage(_ target: MessageTarget, in conversation: ConversationId, verb: String) throws -> MessageRecord {
        let message = try find(target, in: conversation)
        guard message.direction == .outgoing, message.sender.address == engine.ownAddress.description else {
            throw OperationError.refused("only your own messages can be \(verb == "edit" ? "edited" : "deleted")")
        }
        guard !message.deleted else { throw OperationError.refused("that message was deleted") }
        guard message.state != .failed else { throw OperationError.refused("that message was never sent: /retry or /discard it") }
        return message
    }

    /// The message `target` names in `conversation`.
    func find(_ target: MessageTarget, in conversation: ConversationId) throws -> MessageRecord {
        if case .group(let id) = conversation { _ = try engine.group(id) }    // an unknown group, not "no message"
        let history = try engine.messages(in: conversation, limit: 10_000).filter { $0.direction != .system }
        let found: MessageRecord? = switch target {
        case .id(let id): history.last { $0.clientMessageId == id }
        case .timestamp(let timestamp, let author):
            history.last { $0.sentAt == timestamp && (author == nil || $0.sender.address == author?.description) }
        }
        guard let found else {
            let what = switch target {
            case .id(let id): "the id \(Hex.encode(id))"
            case .timestamp(let timestamp, _): "the timestamp \(timestamp)"
            }
            let place = conversation.group.map { "group \($0.hex)" } ?? "the conversation with \(conversation)"
            throw OperationError.refused("no message with \(what) in \(place)")
        }
        return found
    }

    /// The administrator's policy for sending into `conversation`: to a contact, or to every member of a group.
    func checkPolicyAllowsSending(in conversation: ConversationId) throws {
        switch conversation {
        case .direct(let contact): try checkPolicyAllowsSending(to: contact)
        case .group(let id): try checkPolicyAllowsSending(toGroup: id)
        }
    }

    /// One emoji (one character, with its modifiers): not a text, not a control.
    static func checkEmoji(_ emoji: String) throws {
        guard emoji.count == 1, emoji.utf8.count <= Content.maxEmojiBytes, !emoji.unicodeScalars.contains(where: PeerText.isDangerous),
              emoji.unicodeScalars.contains(where: { $0.properties.isEmoji && $0.value >= 0xA9 }) else {
            throw OperationError.invalidInput("a reaction is one emoji")
        }
    }
}

/// What a reaction, an edit or a delete did: the message acted on, as this device stores it now.
public struct ActionResult: Codable, Sendable, Equatable {
    /// The contact's address, or for a group `group:` and its id in hex.
    public let recipient: String
    /// The message acted on: its id and timestamp (signal-cli's targetTimestamp).
    public let id: String
    public let timestamp: UInt64
    public let message: String
    public let edited: Bool
    public let deleted: Bool
    /// Emoji → how many people reacted with it, in the order first given.
    public let reactions: [ReactionCount]

    init(conversation: ConversationId, target: MessageRecord) {
        recipient = conversation.description
        id = Hex.encode(target.clientMessageId)
        timestamp = target.sentAt
        message = target.text
        edited = target.edited
        deleted = target.deleted
        reactions = ReactionCount.counts(target.reactions)
    }
}

public struct ReactionCount: Codable, Sendable, Equatable {
    public let emoji: String
    public let count: Int

    /// The reactions grouped by emoji, in the order each emoji was first given.
    public static func counts(_ reactions: [Reaction]) -> [ReactionCount] {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for reaction in reactions {
            if counts[reaction.emoji] == nil { order.append(reaction.emoji) }
            counts[reaction.emoji, default: 0] += 1
        }
        return order.map { ReactionCount(emoji: $0, count: counts[$0]!) }
    }
}
