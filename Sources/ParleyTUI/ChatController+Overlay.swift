import Foundation
import ParleyOperations
import ParleyProtocol

/// Overlays (command output and search results over the window), the jump to the "new messages" line,
/// and opening a conversation at the message a search result names.
extension ChatController {
    /// The overlay's inside at the terminal's current size (the window area less the roster and the frame).
    private var overlayInside: (rows: Int, columns: Int) {
        let width = terminal?.width ?? 80, height = terminal?.height ?? 24
        let mainWidth = width - (state.showRoster && width >= 60 ? Renderer.rosterWidth + 1 : 0)
        return OverlayPane.inside(width: mainWidth, height: height - 2)
    }

    func show(_ overlay: Overlay) {
        state.overlay = overlay
        state.completions = []
    }

    /// Keys while an overlay is open; returns whether the overlay took the key. Keys it does not take
    /// (typing, window switching) go on to the input line as usual, so a command can be typed over it;
    /// letters are never taken, so nothing typed is lost.
    func handleOverlayKey(_ key: Key) -> Bool {
        guard var overlay = state.overlay else { return false }
        let inside = overlayInside
        let idle = editor.isEmpty
        switch key {
        case .escape, .ctrl("g"):
            state.overlay = nil
            return true
        case .up where idle: overlay.move(by: -1)
        case .down where idle: overlay.move(by: 1)
        case .pageUp: overlay.move(by: -max(1, inside.rows - 1))
        case .pageDown: overlay.move(by: max(1, inside.rows - 1))
        case .wheelUp: overlay.move(by: -Self.wheelLines)
        case .wheelDown: overlay.move(by: Self.wheelLines)
        case .home where idle: overlay.move(by: -Int.max / 4)
        case .end where idle: overlay.move(by: Int.max / 4)
        case .enter where idle:
            if let hit = overlay.selectedHit { open(hit) } else { state.overlay = nil }
            return true
        case .enter:
            // A line typed over the overlay (a message, another command) closes it as it is submitted.
            state.overlay = nil
            return false
        default: return false
        }
        overlay.clamp(rows: inside.rows, width: inside.columns)
        state.overlay = overlay
        return true
    }

    /// `/search TEXT`: every conversation's messages holding TEXT, newest first, as a list to open.
    func search(_ text: String) {
        guard !text.isEmpty else { state.say("usage: /search TEXT", error: true); return }
        do {
            let records = try Operations(engine: engine).searchRecords(text, limit: Self.searchLimit)
            show(Overlay(search: text, hits: records.map {
                Overlay.Hit(conversation: $0.conversation, messageId: $0.id, sentAt: $0.sentAt, outgoing: $0.direction == .outgoing,
                            text: $0.text, query: text)
            }))
        } catch {
            state.say("search failed: \(Self.describe(error))", error: true)
        }
    }

    /// The most results `/search` lists.
    static let searchLimit = 500

    /// Opens a search result: its conversation, scrolled so the message shows, highlighted.
    func open(_ hit: Overlay.Hit) {
        state.overlay = nil
        open(hit.conversation)
        let peer = hit.conversation
        // Older pages until the message is loaded (a search can find a message from long ago).
        while let conversation = state.conversations[peer], !conversation.messages.contains(where: { $0.id == hit.messageId }),
              !conversation.reachedStart {
            let page = History.page(of: peer, from: engine, before: conversation.messages.first?.id, limit: History.pageSize)
            state.prepend(page, to: peer, complete: page.count < History.pageSize)
        }
        guard state.conversations[peer]?.messages.contains(where: { $0.id == hit.messageId }) == true else {
            state.say("that message is no longer in the conversation", error: true)
            return
        }
        state.conversations[peer]?.highlight = hit.messageId
        let height = terminal?.height ?? 24
        if let scroll = renderer.scroll(showing: hit.messageId, in: state, width: terminal?.width ?? 80, height: height,
                                        fromTop: Renderer.conversationArea(height: height) / 3) {
            state.conversations[peer]?.scroll = scroll
        }
    }

    /// M-u and `/unread`: scrolls the focused conversation so the "new messages" line is at the top.
    func jumpToUnread() {
        guard let peer = state.focus, let marker = state.unreadMarker else {
            state.say("no new messages in this conversation since it was opened")
            return
        }
        if let scroll = renderer.scroll(showing: marker, in: state, width: terminal?.width ?? 80, height: terminal?.height ?? 24, fromTop: 0) {
            state.conversations[peer]?.scroll = scroll
        }
    }
}
