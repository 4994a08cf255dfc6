import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore

/// Selection mode: `M-s` (the select-messages action) picks the newest message of the conversation; ↑/↓
/// (or k/j) move through the messages, Home/End (g/G) to the oldest and newest loaded; then r replies,
/// e edits (own messages), d deletes for everyone (own messages, after y), + reacts, s puts the /save
/// line for its attachment in the input (Enter saves it, or type a PATH first), h shows the earlier
/// texts of an edited message in the console; Esc (or q) leaves. `o` is left free for the opener.
extension ChatController {
    /// Handles `key` when selection mode or an action waiting for its input has it; false lets the normal
    /// keys have it.
    func handleSelectionKey(_ key: Key) -> Bool {
        if let pending = state.pendingAction {
            switch pending {
            case .confirmDelete(let message):
                state.pendingAction = nil
                if key == .char("y") || key == .char("Y") { deleteForEveryone(message) } else { state.say("not deleted") }
                return true
            case .reply, .edit, .react:
                if key == .escape || key == .ctrl("g") {
                    state.pendingAction = nil
                    if case .reply = pending {} else { editor.set(state.pendingDraft ?? "") }
                    state.pendingDraft = nil
                    state.say("cancelled")
                    return true
                }
                if key == .enter {
                    state.pendingAction = nil
                    let line = editor.string
                    editor.set(state.pendingDraft ?? "")
                    state.pendingDraft = nil
                    finish(pending, with: line)
                    return true
                }
                return false
            }
        }
        guard state.selection != nil else { return false }
        guard let message = state.selectedMessage else {
            state.leaveSelection()
            return false
        }
        switch key {
        case .up, .char("k"): state.moveSelection(by: -1)
        case .down, .char("j"): state.moveSelection(by: 1)
        case .home, .char("g"): state.selectOldest()
        case .end, .char("G"): state.selectNewest()
        case .pageUp: state.moveSelection(by: -10)
        case .pageDown: state.moveSelection(by: 10)
        case .escape, .char("q"), .ctrl("g"): state.leaveSelection()
        case .char("r"):
            guard !message.deleted else { state.say("that message was deleted", error: true); return true }
            state.leaveSelection()
            state.pendingAction = .reply(message)
        case .char("e"):
            guard message.direction == .outgoing else { state.say("only your own messages can be edited", error: true); return true }
            guard !message.deleted else { state.say("that message was deleted", error: true); return true }
            state.leaveSelection()
            state.pendingAction = .edit(message)
            state.pendingDraft = editor.string
            editor.set(message.text)
        case .char("d"):
            guard message.direction == .outgoing else { state.say("only your own messages can be deleted for everyone", error: true); return true }
            guard !message.deleted else { state.say("that message is deleted already", error: true); return true }
            state.leaveSelection()
            state.pendingAction = .confirmDelete(message)
        case .char("+"):
            guard !message.deleted else { state.say("that message was deleted", error: true); return true }
            state.leaveSelection()
            state.pendingAction = .react(message)
            state.pendingDraft = editor.string
            editor.set("")
        case .char("s"):
            guard editor.isEmpty else { state.say("the input line holds a draft: send or clear it first", error: true); return true }
            saveSelected(message)
        case .char("o"):
            guard !message.deleted else { state.say("that message was deleted", error: true); return true }
            openContent(of: message)
        case .char("h"):
            showEditHistory(message)
        default:
            terminal?.bell()
        }
        return true
    }

    private func finish(_ action: PendingAction, with line: String) {
        let conversation = action.message.conversation
        let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
        let operations = Operations(engine: engine), inbox = inbox
        let target = Operations.MessageTarget.id(action.message.clientMessageId)
        switch action {
        case .reply(let original):
            guard !text.isEmpty else { state.say("not sent: the reply is empty", error: true); return }
            state.scrollToBottom()
            Task {
                do {
                    switch conversation {
                    case .direct(let peer):
                        _ = try await operations.send(.init(recipients: [peer], text: line, replyTo: .id(original.clientMessageId)))
                    case .group(let id):
                        _ = try await operations.sendToGroup(id, text: line, replyTo: .id(original.clientMessageId))
                    }
                    inbox.post { $0.reload(original.conversation) }
                } catch {
                    let text = ChatController.describe(error)
                    inbox.post { $0.state.say("reply not sent: \(text)", error: true); $0.reload(original.conversation) }
                }
            }
        case .edit(let original):
            guard !text.isEmpty else { state.say("not edited: the new text is empty (d deletes a message)", error: true); return }
            guard line != original.text else { state.say("not edited: the text is the same"); return }
            run("edited", in: original.conversation) { try await operations.edit(in: conversation, target, text: line) }
        case .react(let original):
            if text.isEmpty {
                run("reaction removed", in: original.conversation) {
                    let own = original.reactions.first { $0.author == operations.engine.ownAddress.description }?.emoji ?? "👍"
                    return try await operations.react(in: conversation, to: target, emoji: own, remove: true)
                }
            } else {
                run("reacted \(text)", in: original.conversation) { try await operations.react(in: conversation, to: target, emoji: text) }
            }
        case .confirmDelete:
            break
        }
    }

    func deleteForEveryone(_ message: ChatMessage) {
        let operations = Operations(engine: engine), conversation = message.conversation
        run("deleted for everyone", in: conversation) {
            try await operations.deleteForEveryone(in: conversation, .id(message.clientMessageId))
        }
    }

    /// Runs an action in a task; the conversation is read again from the store when it is done.
    private func run(_ done: String, in conversation: ConversationId, _ action: @escaping @Sendable () async throws -> ActionResult) {
        let inbox = inbox
        Task {
            do {
                _ = try await action()
                inbox.post { $0.state.say(done); $0.reload(conversation) }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not done: \(text)", error: true) }
            }
        }
    }

    private func saveSelected(_ message: ChatMessage) {
        guard message.attachment != nil else { state.say("that message has no attachment", error: true); return }
        let attachments = (state.conversations[message.conversation]?.messages ?? []).filter { $0.attachment != nil }
        let number = attachments.count - (attachments.lastIndex { $0.clientMessageId == message.clientMessageId && $0.sender == message.sender } ?? 0)
        // The /save line for this attachment: Enter saves it under its own name here, or type a PATH first.
        state.leaveSelection()
        editor.set("/save \(number) ")
        state.say("Enter saves \(message.attachment?.name ?? "the file") in the current directory; or type a PATH first")
    }

    private func showEditHistory(_ message: ChatMessage) {
        guard message.edited,
              let texts = try? Operations(engine: engine).editHistory(in: message.conversation, .id(message.clientMessageId)), let now = texts.last else {
            state.say("that message was not edited")
            return
        }
        let author = message.direction == .outgoing ? "your message" : "the message of \(state.shownName(of: message.sender))"
        state.log("Earlier texts of \(author), oldest first:", style: .title)
        for earlier in texts.dropLast() { state.log("  " + earlier.text, indent: 2) }
        state.log("  now: " + now.text, indent: 2)
        state.say("the earlier texts are in the console (window 0)")
    }

    /// A reaction, edit or delete from a contact or another device of this account.
    func showChanged(_ record: MessageRecord) {
        if !state.apply(changed: ChatMessage(record)), state.conversations[record.conversation] != nil { reload(record.conversation) }
    }
}
