import ParleyProtocol

/// Finding one's place in a conversation: the "new messages" line where the unread part began when the
/// conversation was opened, and the message a search result opened, highlighted. Both belong to one
/// visit: leaving the conversation takes them away.
extension AppState {
    /// Called as the focus moves from `old` to `new`: `old` loses its marker and highlight, and `new`
    /// gets a marker above its first unread message (placed once its messages are loaded).
    mutating func markUnread(leaving old: ConversationId?, entering new: ConversationId?) {
        if let old {
            conversations[old]?.unreadFrom = nil
            conversations[old]?.highlight = nil
        }
        pendingUnreadMarker = nil
        guard let new, let unread = roster.first(where: { $0.conversation == new })?.unread, unread > 0 else { return }
        pendingUnreadMarker = (new, unread)
        settleUnreadMarker()
    }

    /// Places the pending marker above the `count`-th newest incoming message of the loaded history (the
    /// store counts only incoming messages after the newest one read or written, so those are the unread
    /// ones). With more unread than loaded, the oldest loaded incoming message gets it.
    mutating func settleUnreadMarker() {
        guard let (peer, count) = pendingUnreadMarker, let conversation = conversations[peer] else { return }
        pendingUnreadMarker = nil
        let incoming = conversation.messages.filter { $0.direction == .incoming }
        guard !incoming.isEmpty else { return }
        conversations[peer]?.unreadFrom = incoming[max(0, incoming.count - count)].id
    }

    /// The focused conversation's marker, if it has one.
    public var unreadMarker: Int64? { focus.flatMap { conversations[$0]?.unreadFrom } }
}

extension Renderer {
    /// The conversation area's height at this size: the pane less its title and the "↓ N more" line.
    static func conversationArea(height: Int) -> Int { max(1, height - 2 - 1 - 1) }

    /// The scroll position that shows message `id` of the focused conversation with its first line
    /// `fromTop` lines below the top of the pane (or as near as the history allows); nil when it is not loaded.
    public func scroll(showing id: Int64, in state: AppState, width: Int, height: Int, fromTop: Int) -> Int? {
        guard let peer = state.focus, let conversation = state.conversations[peer],
              let through = linesThrough(id, of: conversation, state: state, width: width) else { return nil }
        return max(0, through - (Self.conversationArea(height: height) - fromTop))
    }
}

extension ConversationPane {
    /// The line drawn above the first message that was unread when the conversation was opened.
    static func unreadLine(width: Int) -> PaneLine {
        let label = "new messages"
        let side = max(2, (width - 4 - DisplayWidth.width(label)) / 2)
        return PaneLine(pieces: [(String(repeating: "─", count: side) + " " + label + " " + String(repeating: "─", count: side), .unreadMarker)])
    }

    /// A message's lines with its text in the search-hit colours (the message a search result opened).
    static func searchHighlighted(_ lines: [PaneLine]) -> [PaneLine] {
        lines.map { line in
            var line = line
            line.pieces = line.pieces.map { piece in
                piece.1 == .messageText || piece.1 == .systemText || piece.1 == .secChanged ? (piece.0, ThemeKey.searchHit) : piece
            }
            return line
        }
    }
}
