import Foundation
import ParleyProtocol

/// What a command shows over the focused window instead of switching to the console: text that scrolls
/// (`/help`, `/info`, `/devices`), or search results to move through and open. Esc closes it; the window
/// beneath is left as it was.
public struct Overlay: Equatable, Sendable {
    public struct Line: Equatable, Sendable {
        public var text: String
        public var style: ThemeKey = .helpText
        /// Columns continuation lines are indented by when the line wraps.
        public var indent = 0
        public init(_ text: String, style: ThemeKey = .helpText, indent: Int = 0) {
            self.text = text
            self.style = style
            self.indent = indent
        }
    }

    /// One search result: the message it opens and the line of it that matched.
    public struct Hit: Equatable, Sendable {
        public let conversation: ConversationId
        /// The message's store id (what opening it scrolls to).
        public let messageId: Int64
        public let sentAt: UInt64
        public let outgoing: Bool
        /// The line of the message that holds the match, neutralised (`PeerText.forTerminal`).
        public let line: String
        /// Where the match is in `line`, in characters; nil when the text matched elsewhere.
        public let match: Range<Int>?

        public init(conversation: ConversationId, messageId: Int64, sentAt: UInt64, outgoing: Bool, text: String, query: String) {
            self.conversation = conversation
            self.messageId = messageId
            self.sentAt = sentAt
            self.outgoing = outgoing
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { PeerText.forTerminal(String($0)) }
            let matching = lines.first { $0.range(of: query, options: .caseInsensitive) != nil } ?? lines.first ?? ""
            line = matching
            match = matching.range(of: query, options: .caseInsensitive).map { range in
                let start = matching.distance(from: matching.startIndex, to: range.lowerBound)
                return start..<(start + matching.distance(from: range.lowerBound, to: range.upperBound))
            }
        }
    }

    public enum Content: Equatable, Sendable {
        case text([Line])
        case search(query: String, hits: [Hit])
    }

    public var title: String
    public var content: Content
    /// The first line (text) or result (search) shown.
    public var top = 0
    /// The result Enter opens.
    public var selected = 0

    public init(title: String, lines: [Line]) {
        self.title = title
        content = .text(lines)
    }

    public init(search query: String, hits: [Hit]) {
        title = "Search: \(PeerText.forTerminal(query)) — \(hits.count) result\(hits.count == 1 ? "" : "s")"
        content = .search(query: query, hits: hits)
    }

    public var hits: [Hit] {
        if case .search(_, let hits) = content { return hits }
        return []
    }

    public var selectedHit: Hit? {
        let hits = hits
        return hits.indices.contains(selected) ? hits[selected] : nil
    }

    /// Moves by `lines`: the text scrolls, the selection of a result list moves. `clamp` keeps it in range.
    public mutating func move(by lines: Int) {
        switch content {
        case .text: top = max(0, top + lines)
        case .search: selected = max(0, selected + lines)
        }
    }

    /// Keeps the position in range for a pane with `rows` rows and `width` columns of text: text stops
    /// at its last screenful, a selection at the last result and always on screen.
    public mutating func clamp(rows: Int, width: Int) {
        let rows = max(1, rows)
        switch content {
        case .text:
            top = min(top, max(0, OverlayPane.wrap(self, width: width).count - rows))
        case .search(_, let hits):
            selected = min(selected, max(0, hits.count - 1))
            if selected < top { top = selected }
            if selected >= top + rows { top = selected - rows + 1 }
            top = min(top, max(0, hits.count - rows))
        }
        top = max(0, top)
    }
}

/// Draws an `Overlay` as a framed box over the window area: the title in the top border, what the keys
/// do and where the view is in the bottom one.
enum OverlayPane {
    /// The rows and text columns inside the frame of a box `width` × `height`.
    static func inside(width: Int, height: Int) -> (rows: Int, columns: Int) { (max(1, height - 2), max(1, width - 4)) }

    static func draw(_ overlay: Overlay, state: AppState, into canvas: inout Canvas, x: Int, width: Int, height: Int, timeZone: TimeZone) {
        guard width >= 8, height >= 3 else { return }
        var overlay = overlay
        let (rows, columns) = inside(width: width, height: height)
        overlay.clamp(rows: rows, width: columns)
        canvas.fill(x: x, y: 0, width: width, height: height, style: .base)
        // The frame.
        let right = x + width - 1, bottom = height - 1
        canvas.put("┌" + String(repeating: "─", count: width - 2) + "┐", x: x, y: 0, style: .overlayBorder)
        for y in 1..<bottom {
            canvas.put("│", x: x, y: y, style: .overlayBorder)
            canvas.put("│", x: right, y: y, style: .overlayBorder)
        }
        canvas.put("└" + String(repeating: "─", count: width - 2) + "┘", x: x, y: bottom, style: .overlayBorder)
        canvas.put(" " + DisplayWidth.truncate(overlay.title, to: max(1, width - 6)) + " ", x: x + 2, y: 0, style: .title, limit: width - 3)

        let total: Int
        switch overlay.content {
        case .text:
            let lines = wrap(overlay, width: columns)
            total = lines.count
            for (row, line) in lines.dropFirst(overlay.top).prefix(rows).enumerated() {
                canvas.put(line.text, x: x + 2, y: 1 + row, style: line.style, limit: columns)
            }
        case .search(let query, let hits):
            total = hits.count
            if hits.isEmpty {
                canvas.put("No message contains \"\(PeerText.forTerminal(query))\".", x: x + 2, y: 1, style: .helpText, limit: columns)
            }
            for (row, index) in hits.indices.dropFirst(overlay.top).prefix(rows).enumerated() {
                drawHit(hits[index], selected: index == overlay.selected, state: state, into: &canvas, x: x + 1, y: 1 + row,
                        width: width - 2, timeZone: timeZone)
            }
        }
        // What the keys do, and which part is shown when not all of it fits.
        let keys = if case .search = overlay.content { "↑↓ choose · Enter opens · Esc closes" } else { "↑↓ PgUp PgDn scroll · Esc closes" }
        let position = total > rows ? " \(overlay.top + 1)–\(min(total, overlay.top + rows)) of \(total)" : ""
        canvas.put(" " + keys + position + " ", x: x + 2, y: bottom, style: .overlayBorder, limit: width - 3)
    }

    /// One result on one row: the conversation, the time, who wrote it, and the matching line with the
    /// match marked (the line starts shortly before the match when it is too long to show whole).
    private static func drawHit(_ hit: Overlay.Hit, selected: Bool, state: AppState, into canvas: inout Canvas, x: Int, y: Int,
                                width: Int, timeZone: TimeZone) {
        let style: ThemeKey = selected ? .overlaySelected : .helpText
        canvas.fill(x: x, y: y, width: width, height: 1, style: style)
        let end = x + width
        let address = hit.conversation.description
        // Narrow: a shorter name column and no year, so the matching line keeps most of the row.
        let wide = width >= 90
        let nameWidth = wide ? 16 : max(6, min(12, width / 6))
        let shown = hit.conversation.group != nil ? state.windowName(of: hit.conversation) : state.nicknames[address] ?? ConversationPane.shortName(address)
        let name = DisplayWidth.truncate(shown, to: nameWidth)
        var cx = canvas.put((selected ? "▶ " : "  ") + name, x: x, y: y, style: selected ? style : .peerName, limit: end - x)
        cx = max(cx + 1, x + 3 + nameWidth)
        cx = canvas.put(time(hit.sentAt, timeZone, withYear: wide) + "  ", x: cx, y: y, style: selected ? style : .timestamp, limit: max(0, end - cx))
        cx = canvas.put(hit.outgoing ? "me: " : "", x: cx, y: y, style: selected ? style : .ownName, limit: max(0, end - cx))
        let characters = Array(hit.line)
        let room = end - cx - 1
        var start = 0
        if let match = hit.match, DisplayWidth.width(String(characters[..<match.upperBound])) > room {
            // A little of what comes before the match, as much as leaves room for the match itself.
            start = max(0, match.lowerBound - 10)
            while start < match.lowerBound, DisplayWidth.width(String(characters[start..<match.upperBound])) + 1 > room { start += 1 }
            cx = canvas.put("…", x: cx, y: y, style: style, limit: max(0, end - cx))
        }
        for (offset, character) in characters[start...].enumerated() {
            let index = start + offset
            let inMatch = hit.match?.contains(index) ?? false
            let next = canvas.put(String(character), x: cx, y: y, style: inMatch ? .searchHit : style, limit: max(0, end - cx - 1))
            if next == cx { break }
            cx = next
        }
    }

    private static func time(_ ms: UInt64, _ zone: TimeZone, withYear: Bool) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = zone
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = withYear ? "yyyy-MM-dd HH:mm" : "MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// The text lines wrapped to `width` columns, continuation lines under their hanging indent.
    static func wrap(_ overlay: Overlay, width: Int) -> [Overlay.Line] {
        guard case .text(let lines) = overlay.content else { return [] }
        var out: [Overlay.Line] = []
        for line in lines {
            if line.indent > 0, line.indent >= width / 2, line.text.count > line.indent {
                // Too narrow for the column: its head on a line of its own, the rest under it, indented.
                var head = String(line.text.prefix(line.indent))
                while head.last == " " { head.removeLast() }
                out.append(Overlay.Line(head, style: line.style))
                let rest = String(line.text.dropFirst(line.indent))
                out += DisplayWidth.wrap(rest, columns: max(1, width - 4)).map { Overlay.Line("    " + $0, style: line.style) }
                continue
            }
            let indent = line.indent
            let first = DisplayWidth.wrap(line.text, columns: max(1, width))
            guard first.count > 1, indent > 0 else {
                out += first.map { Overlay.Line($0, style: line.style) }
                continue
            }
            out.append(Overlay.Line(first[0], style: line.style))
            let rest = String(line.text.dropFirst(first[0].count))
            out += DisplayWidth.wrap(rest, columns: max(1, width - indent)).map {
                Overlay.Line(String(repeating: " ", count: indent) + $0, style: line.style)
            }
        }
        return out
    }
}
