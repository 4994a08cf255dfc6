import ParleyProtocol
import ParleyStore

/// The message picked in selection mode (`M-s`): the keys act on it (r reply, e edit, d delete, + react,
/// s save). Named by its author and client message id, so loading older pages does not move it.
public struct MessageSelection: Equatable, Sendable {
    public let conversation: ConversationId
    public var clientMessageId: [UInt8]
    public var sender: String
}

/// What the input line is for while an action on a selected message waits: the prompt says so, Enter
/// does it, Esc cancels it.
public enum PendingAction: Equatable, Sendable {
    /// The next line sent replies to this message.
    case reply(ChatMessage)
    /// The next line replaces this message's text.
    case edit(ChatMessage)
    /// The next line is one emoji for this message (empty: remove this account's reaction).
    case react(ChatMessage)
    /// y deletes this message for everyone; any other key keeps it.
    case confirmDelete(ChatMessage)

    public var message: ChatMessage {
        switch self {
        case .reply(let m), .edit(let m), .react(let m), .confirmDelete(let m): m
        }
    }
}

extension AppState {
    /// The messages of the focused conversation selection moves through (notices of the window itself are
    /// not messages anyone wrote).
    private var selectable: [ChatMessage] {
        guard let focus else { return [] }
        return conversations[focus]?.messages.filter { $0.direction != .system } ?? []
    }

    private func index(of selection: MessageSelection, in messages: [ChatMessage]) -> Int? {
        messages.lastIndex { $0.clientMessageId == selection.clientMessageId && $0.sender == selection.sender }
    }

    /// Enters selection mode on the newest message of the focused conversation; false when there is none.
    @discardableResult
    public mutating func enterSelection() -> Bool {
        guard let focus, let newest = selectable.last else { return false }
        selection = MessageSelection(conversation: focus, clientMessageId: newest.clientMessageId, sender: newest.sender)
        pendingAction = nil
        return true
    }

    /// Moves the selection `step` messages (negative: older), stopping at either end of what is loaded.
    public mutating func moveSelection(by step: Int) {
        let messages = selectable
        guard var current = selection, let at = index(of: current, in: messages) else { return }
        let target = messages[max(0, min(messages.count - 1, at + step))]
        current.clientMessageId = target.clientMessageId
        current.sender = target.sender
        selection = current
    }

    public mutating func selectOldest() { moveSelection(by: -Int.max / 4) }
    public mutating func selectNewest() { moveSelection(by: Int.max / 4) }

    public var selectedMessage: ChatMessage? {
        guard let selection, selection.conversation == focus else { return nil }
        let messages = selectable
        return index(of: selection, in: messages).map { messages[$0] }
    }

    public mutating func leaveSelection() {
        selection = nil
    }

    /// Whether `message` is the selected one.
    public func isSelected(_ message: ChatMessage) -> Bool {
        guard let selection, selection.conversation == message.conversation else { return false }
        return selection.clientMessageId == message.clientMessageId && selection.sender == message.sender
    }

    /// A reaction, an edit or a delete changed a message: the loaded copy shows it (one not loaded is read
    /// from the store when its page is). Returns whether it was loaded.
    @discardableResult
    public mutating func apply(changed message: ChatMessage) -> Bool {
        guard var conversation = conversations[message.conversation],
              let index = conversation.messages.lastIndex(where: { $0.clientMessageId == message.clientMessageId && $0.sender == message.sender })
        else { return false }
        let state = conversation.messages[index].state
        conversation.messages[index] = message
        if Self.rank(state) > Self.rank(message.state) { conversation.messages[index].state = state }
        conversations[message.conversation] = conversation
        return true
    }

    /// The input line's prompt while selecting or while an action waits; nil otherwise.
    public var actionPrompt: String? {
        if let pendingAction {
            switch pendingAction {
            case .reply(let m): return "[reply to \(m.direction == .outgoing ? "yourself" : shownName(of: m.sender))] "
            case .edit: return "[edit] "
            case .react: return "[react: one emoji, empty removes] "
            case .confirmDelete: return "[delete for everyone? y/n] "
            }
        }
        if selection != nil { return "[select: ↑↓ r reply e edit d delete + react s save Esc] " }
        return nil
    }
}
