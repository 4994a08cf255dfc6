import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore

/// One screen line of a conversation: styled pieces.
struct PaneLine: Sendable {
    var pieces: [(String, ThemeKey)]
    /// On the first of the blank rows left for an image: the image and how many rows it has.
    var image: (key: ImageKey, rows: Int, columns: Int)? = nil
}

/// The conversation window: a title with the contact's trust state, the history drawn bottom-up with day
/// separators, wrapped messages, delivery marks on own messages, and the typing indicator. Wrapped
/// messages are cached (keyed by width and state), so scrolling through a long history wraps each
/// message once.
final class ConversationPane {
    /// Stored messages are keyed by their store id (cheap to hash, as scrolling looks up thousands).
    private struct CacheKey: Hashable {
        let id: Int64, clientId: [UInt8], state: UInt8, width: Int16, timestamps: Bool, attachmentNumber: Int32, imageRows: Int16
        /// What message actions changed (text, edited, deleted, reactions) and the quoted line.
        let revision: Int
    }
    private var cache: [CacheKey: [PaneLine]] = [:]
    /// The contacts' nicknames the cached lines were wrapped with (a rename wraps them again).
    private var names: [String: String] = [:]
    /// The contacts' addresses they were wrapped with (how a group window names a member depends on them).
    private var contacts: Set<String> = []
    private var formatters: (zone: TimeZone, time: DateFormatter, day: DateFormatter)?

    func draw(_ state: AppState, conversation id: ConversationId, into canvas: inout Canvas, x: Int, width: Int, height: Int, now: UInt64,
              timeZone: TimeZone) {
        if names != state.nicknames || contacts != state.contacts {
            names = state.nicknames
            contacts = state.contacts
            cache.removeAll()
        }
        let trust = state.trust(of: id) ?? .unverified
        let title = state.windowName(of: id)
        let (badge, badgeStyle) = TrustBadge.badge(trust)
        let (words, wordsStyle) = TrustBadge.words(trust)
        var tx = canvas.put(" " + DisplayWidth.truncate(title, to: max(4, width - 26)) + " ", x: x, y: 0, style: .title)
        if case .group(let group) = id, let summary = state.groups[group] {
            // A group's title says how many accounts are in it; its trust is the weakest of theirs.
            let count = summary.members.count
            let size = summary.active ? "(\(count) member\(count == 1 ? "" : "s")) " : "(no longer a member) "
            tx = canvas.put(size, x: tx, y: 0, style: .title, limit: max(0, x + width - tx))
        }
        tx = canvas.put(badge + " " + words, x: tx, y: 0, style: badgeStyle == wordsStyle ? wordsStyle : badgeStyle)
        if let timer = state.conversations[id]?.disappearing {
            tx = canvas.put(" · disappears after \(DurationText.shown(UInt64(timer)))", x: tx, y: 0, style: .title, limit: max(0, x + width - tx))
        }
        canvas.put(" · end-to-end encrypted", x: tx, y: 0, style: .secEncrypted, limit: max(0, x + width - tx))
        guard let conversation = state.conversations[id] else { return }
        var area = height - 1
        if let until = conversation.typingUntil, until > now {
            canvas.put(" " + (conversation.typist.map { state.nicknames[$0] ?? Self.shortName($0) } ?? title) + " is typing…", x: x, y: height - 1, style: .typing)
            area -= 1
        }
        // Scrolled up: the count of newer lines gets the bottom line of its own, never drawn over a message.
        if conversation.scroll > 0 {
            let more = " ↓ \(conversation.scroll) more "
            canvas.put(more, x: x + width - DisplayWidth.width(more), y: area, style: .rosterUnread)
            area -= 1
        }
        var skip = conversation.scroll
        let selection = state.selection?.conversation == id ? state.selection : nil
        if let selection, let range = selectedLines(conversation, selection, width: width, timestamps: state.timestamps,
                                                    imageRows: state.imageRows, timeZone: timeZone) {
            // Selection mode keeps the selected message in view, scrolling as little as it can.
            if range.lowerBound < skip { skip = range.lowerBound }
            if range.upperBound > skip + area { skip = range.upperBound - area }
        }
        var window = bottomLines(conversation, width: width, timestamps: state.timestamps, imageRows: state.imageRows, timeZone: timeZone,
                                 skip: skip, count: area, selection: selection)
        if window.lines.count < area, window.total > area {
            // Scrolled past the oldest line: show the top screenful instead of a gap.
            window = bottomLines(conversation, width: width, timestamps: state.timestamps, imageRows: state.imageRows, timeZone: timeZone,
                                 skip: window.total - area, count: area, selection: selection)
        }
        let visible = window.lines
        // `lines` runs newest first; draw upwards from the bottom of the area.
        for (offset, line) in visible.enumerated() {
            var cx = x + 1
            // An image is placed only when all its rows are on screen.
            if let image = line.image, area - offset >= 1, area - offset + image.rows - 1 <= area {
                let indent = line.pieces.first.map { DisplayWidth.width($0.0) } ?? 0
                canvas.images.append(ImagePlacement(key: image.key, x: cx + indent, y: area - offset, columns: image.columns, rows: image.rows))
            }
            for (text, style) in line.pieces { cx = canvas.put(text, x: cx, y: area - offset, style: style, limit: x + width - cx) }
        }
    }

    func lineCount(_ conversation: AppState.Conversation, width: Int, timestamps: Bool, imageRows: Int = 0, timeZone: TimeZone, limit: Int) -> Int {
        bottomLines(conversation, width: width, timestamps: timestamps, imageRows: imageRows, timeZone: timeZone, skip: limit, count: 0).total
    }

    /// How many lines, counted from the newest, reach up to the top of message `id` (and the "new
    /// messages" line above it); nil when it is not in the loaded history.
    func linesThrough(_ id: Int64, of conversation: AppState.Conversation, width: Int, timestamps: Bool, imageRows: Int, timeZone: TimeZone) -> Int? {
        let walk = bottomLines(conversation, width: width, timestamps: timestamps, imageRows: imageRows, timeZone: timeZone,
                               skip: Int.max / 4, count: 0, through: id)
        return walk.found ? walk.total : nil
    }

    /// Up to `count` lines, newest first, after skipping the `skip` newest; `total` is how many lines were
    /// walked (less than skip + count only when the loaded history ran out). Lines that are skipped are
    /// counted from the cache, never copied.
    /// The lines the selected message takes, counted from the newest line up (its screen lines are
    /// `range.upperBound - 1` down to `range.lowerBound` lines above the bottom); nil when it is not loaded.
    private func selectedLines(_ conversation: AppState.Conversation, _ selection: MessageSelection, width: Int, timestamps: Bool,
                               imageRows: Int, timeZone: TimeZone) -> Range<Int>? {
        let f = formatters(for: timeZone)
        let offset = Int64(timeZone.secondsFromGMT()) * 1000
        func day(_ m: ChatMessage) -> Int64 { (Int64(m.sentAt) + offset) / 86_400_000 }
        let messages = conversation.messages
        var walked = 0, attachments = 0
        for index in messages.indices.reversed() {
            let message = messages[index]
            if message.attachment != nil { attachments += 1 }
            let count = lines(for: message, in: messages, width: width - 2, timestamps: timestamps, time: f.time,
                              attachmentNumber: message.attachment == nil ? 0 : attachments, imageRows: imageRows).count
            if message.clientMessageId == selection.clientMessageId && message.sender == selection.sender { return walked..<(walked + count) }
            walked += count
            if index == 0 ? conversation.reachedStart : day(messages[index - 1]) != day(message) { walked += 1 }
        }
        return nil
    }

    private func bottomLines(_ conversation: AppState.Conversation, width: Int, timestamps: Bool, imageRows: Int = 0, timeZone: TimeZone,
                             skip: Int, count: Int, selection: MessageSelection? = nil,
                             through stop: Int64? = nil) -> (lines: [PaneLine], total: Int, found: Bool) {
        let f = formatters(for: timeZone)
        let offset = Int64(timeZone.secondsFromGMT()) * 1000
        func day(_ m: ChatMessage) -> Int64 { (Int64(m.sentAt) + offset) / 86_400_000 }
        var out: [PaneLine] = []
        var walked = 0
        let wanted = skip + count
        let messages = conversation.messages
        var index = messages.count - 1
        // Attachments are numbered from the newest, as /save N, /open N and /attachments count them.
        var attachments = 0
        func take(_ line: @autoclosure () -> PaneLine) {
            if walked >= skip && walked < wanted { out.append(line()) }
            walked += 1
        }
        while index >= 0, walked < wanted {
            let message = messages[index]
            if message.attachment != nil { attachments += 1 }
            var wrapped = lines(for: message, in: messages, width: width - 2, timestamps: timestamps, time: f.time,
                                attachmentNumber: message.attachment == nil ? 0 : attachments, imageRows: imageRows)
            if let selection, message.clientMessageId == selection.clientMessageId, message.sender == selection.sender {
                wrapped = wrapped.map { Self.highlighted($0, width: width - 2) }
            } else if message.id == conversation.highlight {
                wrapped = Self.searchHighlighted(wrapped)
            }
            if walked + wrapped.count <= skip {
                walked += wrapped.count
            } else {
                for line in wrapped.reversed() { take(line) }
            }
            if message.id == conversation.unreadFrom { take(Self.unreadLine(width: width)) }
            if message.id == stop { return (out, walked, true) }
            if index == 0 ? conversation.reachedStart : day(messages[index - 1]) != day(message) {
                take(self.separator(for: message, width: width, formatter: f.day))
            }
            index -= 1
        }
        if cache.count > 20_000 { cache.removeAll(keepingCapacity: true) }
        return (out, walked, false)
    }

    private func separator(for message: ChatMessage, width: Int, formatter: DateFormatter) -> PaneLine {
        let label = formatter.string(from: Date(timeIntervalSince1970: Double(message.sentAt) / 1000))
        let side = max(2, (width - 4 - DisplayWidth.width(label)) / 2)
        return PaneLine(pieces: [(String(repeating: "─", count: side) + " " + label + " " + String(repeating: "─", count: side), .daySeparator)])
    }

    /// A selected message's line: every piece in the selection's style, filled to the pane's width so the
    /// whole row reads as one bar in every theme (also monochrome, where the style is reverse video).
    static func highlighted(_ line: PaneLine, width: Int) -> PaneLine {
        var highlighted = line
        highlighted.pieces = line.pieces.map { ($0.0, ThemeKey.selected) }
        let used = highlighted.pieces.reduce(0) { $0 + DisplayWidth.width($1.0) }
        if used < width { highlighted.pieces.append((String(repeating: " ", count: width - used), .selected)) }
        return highlighted
    }

    /// The first line of the message `id` of `messages` (the quote above a reply), as "name: text".
    private func quoted(_ id: [UInt8], in messages: [ChatMessage]) -> String {
        guard let original = messages.last(where: { $0.clientMessageId == id }) else { return "an earlier message" }
        let name = original.direction == .outgoing ? "me" : senderName(original)
        let text = original.deleted ? "(deleted)" : original.text.isEmpty ? original.attachment.map { "📎 \($0.name)" } ?? "" : original.text
        return name + ": " + (text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? "")
    }

    /// The reactions under a message: each emoji with how many gave it, in the order first given.
    static func reactionLine(_ reactions: [Reaction]) -> String {
        var order: [String] = [], counts: [String: Int] = [:]
        for reaction in reactions {
            let emoji = PeerText.forTerminal(reaction.emoji)
            if counts[emoji] == nil { order.append(emoji) }
            counts[emoji, default: 0] += 1
        }
        return order.map { "\($0) \(counts[$0]!)" }.joined(separator: "  ")
    }

    private func lines(for message: ChatMessage, in messages: [ChatMessage], width: Int, timestamps: Bool, time: DateFormatter,
                       attachmentNumber: Int, imageRows: Int) -> [PaneLine] {
        let quote = message.replyTo.map { quoted($0, in: messages) }
        var revision = Hasher()
        revision.combine(message.text)
        revision.combine(message.edited)
        revision.combine(message.deleted)
        revision.combine(message.reactions.map { $0.author + "\u{0}" + $0.emoji })
        revision.combine(quote)
        let key = CacheKey(id: message.id, clientId: message.id == 0 ? message.clientMessageId : [], state: message.state.rawValue,
                           width: Int16(clamping: width), timestamps: timestamps, attachmentNumber: Int32(clamping: attachmentNumber),
                           imageRows: Int16(clamping: imageRows), revision: revision.finalize())
        if let cached = cache[key] { return cached }
        var prefix: [(String, ThemeKey)] = []
        if timestamps { prefix.append((time.string(from: Date(timeIntervalSince1970: Double(message.sentAt) / 1000)) + " ", .timestamp)) }
        let textStyle: ThemeKey
        switch message.direction {
        case .system:
            prefix.append(("*** ", .systemText))
            let lower = message.text.lowercased()
            textStyle = lower.contains("changed") && lower.contains("identity") ? .secChanged : .systemText
        case .outgoing:
            prefix.append(("me: ", .ownName))
            textStyle = .messageText
        case .incoming where message.sender.isEmpty:
            // A problem the engine wrote into a group's conversation names no sender: a notice.
            prefix.append(("*** ", .systemText))
            textStyle = .secChanged
        case .incoming:
            prefix.append((senderName(message) + ": ", .peerName))
            textStyle = .messageText
        }
        var mark: (String, ThemeKey)?
        if message.direction == .outgoing {
            mark = switch message.state {
            case .pending: (" ⧗", .statePending)
            case .sent: (" ✓", .stateSent)
            case .delivered: (" ✓✓", .stateDelivered)
            case .read: (" ✓✓ read", .stateRead)
            case .failed: (" ✗ failed", .stateFailed)
            case .received, .seen: nil
            }
        }
        var indent = prefix.reduce(0) { $0 + DisplayWidth.width($1.0) }
        if indent > width / 2 { indent = 2 }
        let markWidth = mark.map { DisplayWidth.width($0.0) } ?? 0
        var body = message.text
        var bodyStyle = textStyle
        // Links are found in the text alone (never in the label, whose file name the sender chose).
        var linked = Self.linkMask(message.text)
        if message.deleted {
            body = "🗑 deleted"
            bodyStyle = .edited
            linked = []
        } else if let file = message.attachment {
            let label = Self.attachmentLabel(file, number: attachmentNumber)
            body = body.isEmpty ? label : label + "\n" + body
            linked = Array(repeating: false, count: label.count + (message.text.isEmpty ? 0 : 1)) + linked
        }
        let editedMark = message.edited && !message.deleted ? " (edited)" : ""
        let wrapped = DisplayWidth.wrap(body, columns: max(1, width - indent - markWidth - editedMark.count))
        var result: [PaneLine] = []
        let padding = (String(repeating: " ", count: indent), ThemeKey.base)
        if let quote {
            // The quoted line above the reply, cut to the pane: enough to recognise it.
            result.append(PaneLine(pieces: [padding, ("┌ " + DisplayWidth.truncate(quote, to: max(4, width - indent - 2)), .quote)]))
        }
        let characters = Array(body)
        var cursor = 0
        for (i, piece) in wrapped.enumerated() {
            var line = PaneLine(pieces: i == 0 ? prefix : [padding])
            line.pieces += Self.styled(piece, characters, linked, &cursor, base: bodyStyle)
            if i == wrapped.count - 1 {
                if !editedMark.isEmpty { line.pieces.append((editedMark, .edited)) }
                if let mark { line.pieces.append(mark) }
            }
            result.append(line)
        }
        if !message.reactions.isEmpty, !message.deleted {
            let reactions = DisplayWidth.truncate(Self.reactionLine(message.reactions), to: max(4, width - indent))
            result.append(PaneLine(pieces: [padding, (reactions, .reaction)]))
        }
        if imageRows > 0, !message.deleted, let file = message.attachment, KittyGraphics.isPNG(fileName: file.name), file.size <= KittyGraphics.maxBytes {
            // Blank rows under the message for the terminal to draw the image in.
            let blank = PaneLine(pieces: [(String(repeating: " ", count: indent), .base)])
            var first = blank
            first.image = (ImageKey(sender: message.sender, clientMessageId: message.clientMessageId), imageRows, max(1, width - indent))
            result += [first] + Array(repeating: blank, count: imageRows - 1)
        }
        cache[key] = result
        return result
    }

    /// An attachment's line: a placeholder for an image (`[image: cat.png 120 KB — /open 3]`), else the
    /// file with the commands that save and open it. The name is neutralised again here.
    static func attachmentLabel(_ file: (name: String, size: UInt64), number: Int) -> String {
        let name = PeerText.forTerminal(file.name), n = max(1, number)
        if KittyGraphics.isImage(fileName: file.name) { return "[image: \(name) \(size(file.size)) — /open \(n)]" }
        return "📎 \(name) (\(size(file.size))) — /save \(n), /open \(n)"
    }

    /// For each character of `text`, whether it belongs to a link.
    static func linkMask(_ text: String) -> [Bool] {
        var mask = Array(repeating: false, count: text.count)
        for link in Links.find(in: text) { for i in link.range { mask[i] = true } }
        return mask
    }

    /// One wrapped piece of a message split into runs of link and non-link text. `cursor` walks the
    /// message's characters alongside; wrapping only ever drops line ends and spaces, which it skips.
    static func styled(_ piece: String, _ characters: [Character], _ linked: [Bool], _ cursor: inout Int,
                       base: ThemeKey) -> [(String, ThemeKey)] {
        var runs: [(String, ThemeKey)] = []
        for character in piece {
            while cursor < characters.count, characters[cursor] != character { cursor += 1 }
            let style: ThemeKey = cursor < linked.count && linked[cursor] ? .link : base
            cursor += 1
            if let last = runs.last, last.1 == style {
                runs[runs.count - 1].0.append(character)
            } else {
                runs.append((String(character), style))
            }
        }
        return runs.isEmpty ? [(piece, base)] : runs
    }

    static func size(_ bytes: UInt64) -> String {
        bytes < 1024 ? "\(bytes) B" : bytes < 1 << 20 ? "\(bytes >> 10) KB" : String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }

    /// Who wrote `message` as its line names them: in a conversation with one contact their nickname or
    /// the address's local part; in a group `AppState.memberName` (the whole address for a non-contact).
    private func senderName(_ message: ChatMessage) -> String {
        if message.conversation.group != nil { return AppState.memberName(message.sender, nicknames: names, contacts: contacts) }
        return names[message.sender] ?? Self.shortName(message.sender)
    }

    static func shortName(_ address: String) -> String {
        address.split(separator: "@").first.map(String.init) ?? address
    }

    private func formatters(for zone: TimeZone) -> (zone: TimeZone, time: DateFormatter, day: DateFormatter) {
        if let formatters, formatters.zone == zone { return formatters }
        let time = DateFormatter(), day = DateFormatter()
        for f in [time, day] {
            f.timeZone = zone
            f.locale = Locale(identifier: "en_US_POSIX")
        }
        time.dateFormat = "HH:mm"
        day.dateFormat = "EEEE d MMMM yyyy"
        formatters = (zone, time, day)
        cache.removeAll()
        return formatters!
    }
}

/// The verification screen: the safety number as 12 groups of 5 digits, the QR code to scan, and what
/// to do next.
enum VerifyPane {
    static func draw(_ v: AppState.Verification, into canvas: inout Canvas, x: Int, width: Int, height: Int) {
        var y = 0
        canvas.put(" Safety number with \(v.peer)", x: x, y: y, style: .verifyTitle)
        let (words, style) = TrustBadge.words(v.trust)
        canvas.put(" — " + words, x: x + DisplayWidth.width(" Safety number with \(v.peer)"), y: y, style: style)
        y += 2
        let groups = stride(from: 0, to: v.digits.count, by: 5).map { start -> String in
            let s = v.digits.index(v.digits.startIndex, offsetBy: start)
            return String(v.digits[s..<v.digits.index(s, offsetBy: min(5, v.digits.count - start))])
        }
        for row in stride(from: 0, to: groups.count, by: 4) {
            canvas.put("   " + groups[row..<min(groups.count, row + 4)].joined(separator: " "), x: x, y: y, style: .verifyDigits)
            y += 1
        }
        y += 1
        let help = [
            "Compare these digits with \(ConversationPane.shortName(v.peer))'s screen (in person or on a call), or scan the code.",
            "If they match: /verify \(v.peer) DIGITS   (paste or type the 60 digits; spaces are fine)",
            "Esc closes this screen.",
        ]
        // The help goes beside the code when there is room (a code is 30–45 columns wide), else below it.
        let qrWidth = v.qrLines.first.map { DisplayWidth.width($0) } ?? 0
        let sideWidth = width - 3 - qrWidth - 3
        let beside = sideWidth >= 28 && y + v.qrLines.count <= height
        let qrFits = beside || y + v.qrLines.count + help.count + 1 <= height
        var helpY = y
        if qrFits {
            for line in v.qrLines {
                canvas.put(line, x: x + 3, y: y, style: .verifyQR)
                y += 1
            }
        } else {
            canvas.put("   (make the terminal taller to see the QR code)", x: x, y: y, style: .helpText)
            y += 1
        }
        let helpX = beside ? x + 3 + qrWidth + 2 : x
        let helpWidth = beside ? sideWidth : width - 4
        if !beside { helpY = y + 1 }
        for line in help {
            for piece in DisplayWidth.wrap(line, columns: max(1, helpWidth)) where helpY < height {
                canvas.put(" " + piece, x: helpX, y: helpY, style: .helpText)
                helpY += 1
            }
            if beside { helpY += 1 }
        }
    }
}
