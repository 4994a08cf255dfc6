import Foundation
import ParleyProtocol
import ParleyStore
import Testing
@testable import ParleyTUI

/// The unread marker, overlays (command output, search results) and the highlighted message a search
/// opened (#24, features 6, 7 and 9), rendered off-screen. The golden screens in Golden/styled/ show each
/// cell's resolved style in every shipped theme, so a theme that hid one of them would show in the diff.
@Suite struct NavigationTests {
    let bob = "bob@127.0.0.1:7000", carol = "carol@127.0.0.1:7000", me = "alice@127.0.0.1:7000"
    let day1: UInt64 = 1_700_000_000_000
    let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)

    /// Bob's conversation: three messages read (the own reply ends the unread part), then three unread.
    func stateWithUnread(before: Int = 3, after: Int = 3) -> AppState {
        var s = AppState(account: me)
        s.connection = .connected
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.ensureRosterEntry(dm(carol), trust: .unverified)
        var n = 0
        for _ in 0..<before {
            n += 1
            s.apply(message: chat(n, from: bob, in: bob, at: day1 + UInt64(n) * 60_000, text: "old news \(n)"))
        }
        n += 1
        s.apply(message: chat(n, from: me, in: bob, direction: .outgoing, at: day1 + UInt64(n) * 60_000, text: "my answer", state: .read))
        for _ in 0..<after {
            n += 1
            s.apply(message: chat(n, from: bob, in: bob, at: day1 + UInt64(n) * 60_000, text: "unread \(n)"))
        }
        s.conversations[dm(bob)]?.reachedStart = true
        return s
    }

    func rows(_ canvas: Canvas) -> [String] { canvas.text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    // MARK: The unread marker

    @Test func openingAConversationDrawsTheMarkerAboveTheFirstUnreadMessage() throws {
        var s = stateWithUnread()
        #expect(s.roster.first { $0.conversation == dm(bob) }?.unread == 3)
        s.focus(dm(bob))
        #expect(s.unreadMarker == 5)
        let lines = rows(renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1))
        let marker = try #require(lines.firstIndex { $0.contains("new messages") })
        #expect(lines[marker - 1].contains("my answer") && lines[marker + 1].contains("unread 5"), "\(lines)")
        try golden("unread-80x14", lines.joined(separator: "\n"))

        // A message arriving while the conversation is open comes below it; the marker stays where it was.
        s.apply(message: chat(8, from: bob, in: bob, at: day1 + 9 * 60_000, text: "while open"))
        #expect(s.unreadMarker == 5)
    }

    @Test func leavingTheConversationTakesTheMarkerAway() {
        var s = stateWithUnread()
        s.focus(dm(bob))
        s.focus(dm(carol))
        #expect(s.conversations[dm(bob)]?.unreadFrom == nil)
        s.focus(dm(bob))
        #expect(s.unreadMarker == nil)
        let text = renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1).text()
        #expect(!text.contains("new messages"))
    }

    @Test func aConversationWithNothingUnreadHasNoMarker() {
        var s = stateWithUnread(after: 0)
        s.focus(dm(bob))
        #expect(s.unreadMarker == nil)
    }

    /// Focused before its history is loaded (switching windows): the marker is placed once it is.
    @Test func theMarkerWaitsForTheHistory() {
        var s = stateWithUnread()
        let loaded = s.conversations[dm(bob)]
        s.conversations[dm(bob)] = nil
        s.focus(dm(bob))
        #expect(s.unreadMarker == nil)
        s.conversations[dm(bob)] = loaded
        s.settleUnreadMarker()
        #expect(s.unreadMarker == 5)
    }

    /// M-u: far more unread than a screen holds; the jump puts the marker at the top of the pane.
    @Test func jumpingPutsTheMarkerAtTheTop() throws {
        var s = stateWithUnread(before: 5, after: 40)
        s.focus(dm(bob))
        var lines = rows(renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1))
        #expect(!lines.joined().contains("new messages"))
        let marker = try #require(s.unreadMarker)
        let scroll = try #require(renderer.scroll(showing: marker, in: s, width: 80, height: 14, fromTop: 0))
        s.conversations[dm(bob)]?.scroll = scroll
        lines = rows(renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1))
        #expect(lines[1].contains("new messages"), "\(lines)")
        #expect(lines[2].contains("unread 7"), "\(lines)")
    }

    // MARK: Overlays

    func helpOverlay() -> Overlay {
        let column = (CommandTable.all.map { $0.usage.count }.max() ?? 0) + 4
        return Overlay(title: "Help", lines: [Overlay.Line("Commands (Tab completes; /help COMMAND for more):")]
                       + CommandTable.helpLines().map { Overlay.Line("  " + $0, indent: column) })
    }

    @Test func anOverlayIsFramedOverTheWindowAndScrolls() throws {
        var s = stateWithUnread()
        s.focus(dm(bob))
        s.overlay = helpOverlay()
        let canvas = renderer.render(s, editor: LineEditor(), width: 80, height: 16, now: day1)
        var lines = rows(canvas)
        #expect(lines[0].contains("┌─ Help "))
        #expect(lines[13].contains("└─ ↑↓ PgUp PgDn scroll · Esc closes 1–12 of"), "\(lines[13])")
        #expect(lines[1].contains("Commands (Tab completes"))
        #expect(!lines.joined().contains("unread 5"), "the conversation shows through")
        #expect(lines[14].hasPrefix("[online]"))
        try golden("overlay-help-80x16", lines.joined(separator: "\n"))

        // Scrolled past the end it stops at the last screenful: the last command's line is on screen.
        s.overlay?.move(by: 1000)
        s.overlay?.clamp(rows: OverlayPane.inside(width: 53, height: 14).rows, width: OverlayPane.inside(width: 53, height: 14).columns)
        lines = rows(renderer.render(s, editor: LineEditor(), width: 80, height: 16, now: day1))
        #expect(lines.joined().contains("/quit"))
        let overlay = try #require(s.overlay)
        let total = OverlayPane.wrap(overlay, width: 49).count
        #expect(s.overlay?.top == total - 12)
        s.overlay?.move(by: -1)
        #expect(s.overlay?.top == total - 13)
    }

    /// An image the terminal draws over the cells would show through the overlay: none is placed while one is open.
    @Test func anOverlayHidesInlineImages() {
        var s = MediaScreenTests().state()
        s.imageRows = 4
        #expect(!renderer.render(s, editor: LineEditor(), width: 100, height: 16, now: day1).images.isEmpty)
        s.overlay = Overlay(title: "Info", lines: [Overlay.Line("You are alice")])
        #expect(renderer.render(s, editor: LineEditor(), width: 100, height: 16, now: day1).images.isEmpty)
    }

    /// Switching windows closes an overlay: it was shown over the window being left.
    @Test func switchingWindowsClosesTheOverlay() {
        var s = stateWithUnread()
        s.focus(dm(bob))
        s.overlay = helpOverlay()
        s.focus(dm(bob))
        #expect(s.overlay != nil)
        s.cycleWindow(by: 1)
        #expect(s.overlay == nil)
    }

    /// The window drawn at 120×36 and then 80×24 with the overlay open: the frame follows the new size.
    @Test func anOverlayFollowsAResize() {
        var s = stateWithUnread()
        s.focus(dm(bob))
        s.overlay = helpOverlay()
        s.overlay?.top = 30
        for (width, height) in [(120, 36), (80, 24), (50, 10)] {
            let lines = rows(renderer.render(s, editor: LineEditor(), width: width, height: height, now: day1))
            #expect(lines.count == height)
            for line in lines { #expect(DisplayWidth.width(line) <= width) }
            let x = width >= 60 ? Renderer.rosterWidth + 1 : 0
            #expect(Array(lines[0])[x] == "┌" && Array(lines[height - 3])[x] == "└", "\(width)x\(height): \(lines)")
            #expect(lines[0].hasSuffix("┐") && lines[height - 3].hasSuffix("┘"))
            #expect(lines[height - 2].hasPrefix("[online]"))
        }
    }

    // MARK: Search results

    func searchOverlay() -> Overlay {
        let hits = [
            Overlay.Hit(conversation: dm(bob), messageId: 6, sentAt: day1 + 6 * 60_000, outgoing: false,
                        text: "first line\nthe \u{1B}[31mred\u{1B}[0m needle is \u{202E}here", query: "NEEDLE"),
            Overlay.Hit(conversation: dm(bob), messageId: 4, sentAt: day1 + 4 * 60_000, outgoing: true,
                        text: String(repeating: "a long line before the match ", count: 4) + "needle at the end", query: "needle"),
            Overlay.Hit(conversation: dm(carol), messageId: 2, sentAt: day1, outgoing: false, text: "Needles and pins", query: "needle"),
        ]
        return Overlay(search: "needle", hits: hits)
    }

    @Test func searchResultsMarkTheMatchAndNeutralisePeerText() throws {
        var s = stateWithUnread()
        s.nicknames = [carol: "Carol"]
        s.overlay = searchOverlay()
        s.overlay?.selected = 1
        let canvas = renderer.render(s, editor: LineEditor(), width: 100, height: 12, now: day1)
        let lines = rows(canvas)
        #expect(lines[0].contains("Search: needle — 3 results"))
        let first = try #require(lines.first { $0.contains("needle is") })
        #expect(first.contains("  bob ") && first.contains("11-14 22:19") && first.contains("the ^[[31mred^[[0m needle is \u{FFFD}"),
                "\(first)")
        #expect(!canvas.cells.contains { $0.text.unicodeScalars.contains { PeerText.isDangerous($0) || $0.value == 0x1B } })
        // The match is marked; the second result starts near its match; the selected one is marked.
        let row = try #require(lines.firstIndex(of: first))
        let needle = try #require(first.range(of: "needle"))
        let column = first.distance(from: first.startIndex, to: needle.lowerBound)
        #expect(canvas[column, row].style == .searchHit && canvas[column - 2, row].style != .searchHit)
        let second = try #require(lines.first { $0.contains("needle at the end") })
        #expect(second.contains("▶") && second.contains("me: …") && second.contains("needle"))
        #expect(lines.contains { $0.contains("Carol") && $0.contains("Needles and pins") })
        try golden("overlay-search-100x12", lines.joined(separator: "\n"))
    }

    @Test func theSelectionStaysOnScreen() {
        let hits = (1...30).map { Overlay.Hit(conversation: dm(bob), messageId: Int64($0), sentAt: day1, outgoing: false, text: "hit \($0)", query: "hit") }
        var overlay = Overlay(search: "hit", hits: hits)
        overlay.move(by: 12)
        overlay.clamp(rows: 8, width: 60)
        #expect(overlay.selected == 12 && overlay.top == 5)
        overlay.move(by: 100)
        overlay.clamp(rows: 8, width: 60)
        #expect(overlay.selected == 29 && overlay.top == 22)
        overlay.move(by: -29)
        overlay.clamp(rows: 8, width: 60)
        #expect(overlay.selected == 0 && overlay.top == 0)
        #expect(overlay.selectedHit?.messageId == 1)
    }

    @Test func noResultsSaySo() {
        var s = stateWithUnread()
        s.overlay = Overlay(search: "absent", hits: [])
        let text = renderer.render(s, editor: LineEditor(), width: 80, height: 10, now: day1).text()
        #expect(text.contains("No message contains \"absent\"") && text.contains("0 results"))
    }

    /// A search result opened: its message is highlighted, scrolled into view a third of the way down.
    @Test func theMessageASearchOpenedIsHighlighted() throws {
        var s = stateWithUnread(before: 30, after: 0)
        s.focus(dm(bob))
        s.conversations[dm(bob)]?.highlight = 3
        let scroll = try #require(renderer.scroll(showing: 3, in: s, width: 80, height: 14, fromTop: 3))
        s.conversations[dm(bob)]?.scroll = scroll
        let canvas = renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1)
        let lines = rows(canvas)
        let row = try #require(lines.firstIndex { $0.contains("old news 3") })
        #expect(row == 4, "\(lines)")
        let x = try #require(lines[row].range(of: "old news 3")).lowerBound
        #expect(canvas[lines[row].distance(from: lines[row].startIndex, to: x), row].style == .searchHit)
        #expect(canvas[1, row].style != .searchHit)
        try golden("highlight-80x14", lines.joined(separator: "\n"))
        s.focus(nil)
        #expect(s.conversations[dm(bob)]?.highlight == nil)
    }

    // MARK: Golden screens in every theme

    /// The marker, the help overlay and the search list, each cell's style resolved in every shipped theme.
    @Test func styledGoldenScreensInEveryTheme() throws {
        let library = ThemeLibrary(directories: [ThemeLibrary.shippedDirectory])
        var marker = stateWithUnread()
        marker.focus(dm(bob))
        var help = stateWithUnread()
        help.overlay = helpOverlay()
        var search = stateWithUnread()
        search.overlay = searchOverlay()
        for name in library.names() {
            let theme = try library.load(name)
            for (screen, state) in [("unread", marker), ("help", help), ("search", search)] {
                let canvas = renderer.render(state, editor: LineEditor(), width: 72, height: 12, now: day1)
                try golden("styled/\(screen)-\(name)", Self.styled(canvas, theme))
            }
            // Each stands out from what it is drawn among.
            #expect(theme[.unreadMarker] != theme[.messageText] && theme[.unreadMarker] != theme[.daySeparator], "\(name)")
            #expect(theme[.overlaySelected] != theme[.helpText], "\(name)")
            #expect(theme[.searchHit] != theme[.overlaySelected] && theme[.searchHit] != theme[.helpText], "\(name)")
        }
    }

    /// The screen's text, then a letter per cell for its resolved style, then what each letter is.
    static func styled(_ canvas: Canvas, _ theme: Theme) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var styles: [String] = [], keys: [String: Set<String>] = [:]
        var grid: [String] = []
        for y in 0..<canvas.height {
            var row = ""
            for x in 0..<canvas.width {
                let key = canvas[x, y].style
                let description = describe(theme[key])
                if !styles.contains(description) { styles.append(description) }
                keys[description, default: []].insert(key.rawValue)
                row.append(letters[min(letters.count - 1, styles.firstIndex(of: description)!)])
            }
            grid.append(row)
        }
        let legend = styles.enumerated().map { "\(letters[min(letters.count - 1, $0.offset)]) = \($0.element)  (\(keys[$0.element]!.sorted().joined(separator: ", ")))" }
        return canvas.text() + "\n\n" + grid.joined(separator: "\n") + "\n\n" + legend.joined(separator: "\n")
    }

    static func describe(_ style: ThemeStyle) -> String {
        func color(_ c: ThemeColor) -> String {
            switch c {
            case .terminalDefault: "default"
            case .indexed(let n): "color\(n)"
            }
        }
        var words = [color(style.foreground), "on", color(style.background)]
        for (on, word) in [(style.bold, "bold"), (style.dim, "dim"), (style.underline, "underline"), (style.reverse, "reverse"), (style.italic, "italic")] where on {
            words.append(word)
        }
        return words.joined(separator: " ")
    }

    func golden(_ name: String, _ text: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).txt")
        if ProcessInfo.processInfo.environment["PARLEY_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text + "\n" == expected, "screen differs from Golden/\(name).txt")
    }
}
