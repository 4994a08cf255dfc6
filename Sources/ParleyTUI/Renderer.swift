import Foundation
import ParleyProtocol
import ParleyStore

/// Draws an `AppState` and the input line into a `Canvas`: roster on the left, the focused window (a
/// conversation, the console or the verification screen) on the right, then the status bar and the input
/// line. Pure: the same state, size, clock and time zone give the same canvas.
public final class Renderer {
    public var timeZone: TimeZone
    public static let rosterWidth = 26
    private let conversationPane = ConversationPane()

    public init(timeZone: TimeZone = .current) { self.timeZone = timeZone }

    public func render(_ state: AppState, editor: LineEditor, width: Int, height: Int, now: UInt64) -> Canvas {
        var canvas = Canvas(width: width, height: height)
        guard width >= 20, height >= 5 else {
            canvas.put("Parley: window too small", x: 0, y: 0, style: .statusError)
            return canvas
        }
        let showRoster = state.showRoster && width >= 60
        let mainX = showRoster ? Self.rosterWidth + 1 : 0
        let mainWidth = width - mainX
        // A notice longer than the status bar's room is shown whole on lines of its own above the bar
        // (a security warning cut at the window's edge would lose what it says), taking them from the panes.
        let overflow = StatusBar.overflowLines(state, editor: editor, width: width)
        let noticeRows = min(overflow.count, max(0, height - 5))
        let mainHeight = height - 2 - noticeRows
        if showRoster {
            RosterPane.draw(state, into: &canvas, width: Self.rosterWidth, height: mainHeight)
            for y in 0..<mainHeight { canvas.put("│", x: Self.rosterWidth, y: y, style: .border) }
        }
        if let verification = state.verification {
            VerifyPane.draw(verification, into: &canvas, x: mainX, width: mainWidth, height: mainHeight)
        } else if let focus = state.focus {
            conversationPane.draw(state, conversation: focus, into: &canvas, x: mainX, width: mainWidth, height: mainHeight, now: now, timeZone: timeZone)
        } else {
            ConsolePane.draw(state, into: &canvas, x: mainX, width: mainWidth, height: mainHeight)
        }
        if let overlay = state.overlay {
            // The terminal draws images over the cells: one placed under the overlay would show through it.
            canvas.images.removeAll()
            OverlayPane.draw(overlay, state: state, into: &canvas, x: mainX, width: mainWidth, height: mainHeight, timeZone: timeZone)
        }
        if let notice = state.notice, noticeRows > 0 {
            canvas.fill(x: 0, y: mainHeight, width: width, height: noticeRows, style: .statusBar)
            for (i, line) in overflow.prefix(noticeRows).enumerated() {
                canvas.put(line, x: 0, y: mainHeight + i, style: notice.style)
            }
        }
        StatusBar.draw(state, editor: editor, into: &canvas, y: height - 2, width: width, noticeAbove: noticeRows > 0)
        InputLine.draw(state, editor: editor, into: &canvas, y: height - 1, width: width)
        return canvas
    }

    /// How many lines the focused conversation has above the visible part (to load older pages early).
    public func linesAvailableAbove(_ state: AppState, width: Int, height: Int) -> Int {
        guard let peer = state.focus, let conversation = state.conversations[peer] else { return 0 }
        let showRoster = state.showRoster && width >= 60
        let mainWidth = width - (showRoster ? Self.rosterWidth + 1 : 0)
        return conversationPane.lineCount(conversation, width: mainWidth, timestamps: state.timestamps, imageRows: state.imageRows, timeZone: timeZone, limit: conversation.scroll + height * 2)
            - conversation.scroll - (height - 3)
    }

    /// How many lines of `conversation`, counted from the newest, reach up to the top of message `id`.
    func linesThrough(_ id: Int64, of conversation: AppState.Conversation, state: AppState, width: Int) -> Int? {
        let mainWidth = width - (state.showRoster && width >= 60 ? Self.rosterWidth + 1 : 0)
        return conversationPane.linesThrough(id, of: conversation, width: mainWidth, timestamps: state.timestamps, imageRows: state.imageRows,
                                             timeZone: timeZone)
    }

    /// Keeps a conversation scrolled up no further than its oldest line once the whole history is loaded.
    public func clampScroll(_ state: inout AppState, width: Int, height: Int) {
        guard let peer = state.focus, let conversation = state.conversations[peer], conversation.reachedStart, conversation.scroll > 0 else { return }
        let above = linesAvailableAbove(state, width: width, height: height)
        if above < 0 { state.conversations[peer]?.scroll = max(0, conversation.scroll + above) }
    }
}

enum RosterPane {
    static func draw(_ state: AppState, into canvas: inout Canvas, width: Int, height: Int) {
        canvas.put(" Parley", x: 0, y: 0, style: .title)
        var y = 1
        func row(_ label: String, selected: Bool, style: ThemeKey, badge: (String, ThemeKey)?, suffix: [(String, ThemeKey)]) {
            guard y < height else { return }
            if selected { canvas.fill(x: 0, y: y, width: width, height: 1, style: .rosterSelected) }
            var x = 1
            if let badge { x = canvas.put(badge.0, x: x, y: y, style: selected ? .rosterSelected : badge.1) + 1 }
            let suffixWidth = suffix.reduce(0) { $0 + DisplayWidth.width($1.0) + 1 }
            x = canvas.put(DisplayWidth.truncate(label, to: width - x - suffixWidth - 1), x: x, y: y, style: selected ? .rosterSelected : style)
            var sx = width - suffixWidth
            for (text, key) in suffix { sx = canvas.put(text, x: sx, y: y, style: selected ? .rosterSelected : key) + 1 }
            y += 1
        }
        row("console", selected: state.focus == nil, style: .rosterItem, badge: ("*", .rosterItem), suffix: [])
        y += 1
        if y < height { canvas.put(" Contacts", x: 0, y: y - 1, style: .rosterHeader) }
        for entry in state.roster {
            var suffix: [(String, ThemeKey)] = []
            var badge = TrustBadge.badge(entry.trust)
            if case .group(let id) = entry.conversation {
                // A group: # instead of a trust mark, and how many accounts are in it.
                badge = ("#", .rosterItem)
                let group = state.groups[id]
                suffix.append((group?.active == false ? "[left]" : "[\(group?.members.count ?? 0)]", .rosterItem))
            }
            if entry.pending > 0 { suffix.append(("⧗", .rosterPending)) }
            if entry.unread > 0 { suffix.append(("(\(entry.unread))", .rosterUnread)) }
            row(state.windowName(of: entry.conversation), selected: state.focus == entry.conversation,
                style: entry.unread > 0 ? .rosterUnread : .rosterItem, badge: badge, suffix: suffix)
        }
    }
}

/// The roster's and title bar's marks for a contact's trust state.
public enum TrustBadge {
    public static func badge(_ trust: TrustState) -> (String, ThemeKey) {
        switch trust {
        case .verified: ("✔", .secVerified)
        case .unverified: ("?", .secUnverified)
        case .changed: ("!", .secChanged)
        case .untrusted: ("✖", .secUntrusted)
        }
    }

    public static func words(_ trust: TrustState) -> (String, ThemeKey) {
        switch trust {
        case .verified: ("verified", .secVerified)
        case .unverified: ("unverified", .secUnverified)
        case .changed: ("KEY CHANGED", .secChanged)
        case .untrusted: ("untrusted", .secUntrusted)
        }
    }
}

enum ConsolePane {
    static func draw(_ state: AppState, into canvas: inout Canvas, x: Int, width: Int, height: Int) {
        canvas.put(" console — type /help", x: x, y: 0, style: .title)
        var lines: [(String, ThemeKey)] = []
        for line in state.console {
            let indent = line.indent < (width - 2) / 2 ? line.indent : 0
            let first = DisplayWidth.wrap(line.text, columns: max(1, width - 2))
            guard first.count > 1, indent > 0 else {
                for piece in first { lines.append((piece, line.style)) }
                continue
            }
            // Hanging indent: the first line takes what fits, the rest wraps in the narrower column.
            let head = first[0]
            lines.append((head, line.style))
            let rest = String(line.text.dropFirst(head.count))
            for piece in DisplayWidth.wrap(rest, columns: max(1, width - 2 - indent)) {
                lines.append((String(repeating: " ", count: indent) + piece, line.style))
            }
        }
        let visible = height - 1
        let end = max(0, lines.count - min(state.consoleScroll, max(0, lines.count - visible)))
        let start = max(0, end - visible)
        for (offset, line) in lines[start..<end].enumerated() {
            canvas.put(line.0, x: x + 1, y: 1 + offset, style: line.1, limit: width - 1)
        }
    }
}

enum StatusBar {
    /// The bar's fixed parts, left to right: the connection, the account, the conversation's encryption and trust.
    private static func parts(_ state: AppState) -> [(String, ThemeKey)] {
        let connection: (String, ThemeKey) = switch state.connection {
        case .connected: ("[online]", .statusConnected)
        case .connecting: ("[connecting]", .statusConnecting)
        case .disconnected: ("[offline]", .statusDisconnected)
        case .offline: ("[no relay]", .statusDisconnected)
        }
        var parts = [connection, (state.account, ThemeKey.statusBar)]
        if let peer = state.focus, let trust = state.trust(of: peer) {
            parts.append(("│ 🔒 e2ee", .statusBar))
            parts.append(TrustBadge.words(trust))
        }
        return parts
    }

    private static func mode(_ editor: LineEditor) -> String {
        editor.keymap == .vi ? (editor.mode == .normal ? "[vi:N]" : "[vi:I]") : ""
    }

    /// Columns the notice has on the bar itself.
    private static func noticeRoom(_ state: AppState, editor: LineEditor, width: Int) -> Int {
        let used = parts(state).reduce(0) { $0 + DisplayWidth.width($1.0) + 1 }
        return max(0, width - used - mode(editor).count - 1)
    }

    /// The notice wrapped to the window's width when it does not fit on the bar; empty when it does.
    static func overflowLines(_ state: AppState, editor: LineEditor, width: Int) -> [String] {
        guard let notice = state.notice, DisplayWidth.width("│ " + notice.text) > noticeRoom(state, editor: editor, width: width) else { return [] }
        return DisplayWidth.wrap(notice.text, columns: max(1, width - 1))
    }

    static func draw(_ state: AppState, editor: LineEditor, into canvas: inout Canvas, y: Int, width: Int, noticeAbove: Bool = false) {
        canvas.fill(x: 0, y: y, width: width, height: 1, style: .statusBar)
        var x = 0
        for (text, style) in parts(state) { x = canvas.put(text, x: x, y: y, style: style) + 1 }
        let mode = mode(editor)
        if let notice = state.notice, !noticeAbove {
            x = canvas.put("│ " + notice.text, x: x, y: y, style: notice.style, limit: max(0, width - x - mode.count - 1)) + 1
        }
        if !mode.isEmpty { canvas.put(mode, x: width - mode.count, y: y, style: .inputMode) }
    }
}

enum InputLine {
    static func draw(_ state: AppState, editor: LineEditor, into canvas: inout Canvas, y: Int, width: Int) {
        let prompt = state.actionPrompt ?? state.focus.map { "[" + state.promptName(of: $0) + "] " } ?? "> "
        let promptEnd = canvas.put(prompt, x: 0, y: y, style: .inputPrompt)
        let shown = editor.text.map { $0 == "\n" ? "↵" : $0 }
        let room = max(1, width - promptEnd - 1)
        var widths = shown.map { DisplayWidth.width($0) }
        if widths.isEmpty { widths = [] }
        let caretColumn = widths.prefix(editor.cursor).reduce(0, +)
        // Scroll horizontally so the caret stays visible, a third of the room at a time.
        var start = 0, skipped = 0
        while caretColumn - skipped > room - 1, start < shown.count {
            skipped += widths[start]
            start += 1
        }
        if editor.isEmpty, !state.completions.isEmpty {
            canvas.put(state.completions.joined(separator: " "), x: promptEnd, y: y, style: .completion)
        }
        var x = promptEnd
        for index in start..<shown.count {
            let next = canvas.put(String(shown[index]), x: x, y: y, style: .inputText, limit: width - x)
            if next == x { break }
            x = next
        }
        canvas.cursor = (promptEnd + caretColumn - skipped, y)
        if !editor.isEmpty, !state.completions.isEmpty, x + 3 < width {
            canvas.put("  " + state.completions.joined(separator: " "), x: x, y: y, style: .completion)
        }
    }
}
