import Foundation
import ParleyProtocol
import ParleyStore
import Testing
@testable import ParleyTUI

/// Selection mode and what message actions show: the quote above a reply, reactions with counts,
/// "(edited)", "deleted" and the selected message's bar. Golden screens (text, then each row's styles) and
/// the selection's style in every shipped theme.
@Suite struct MessageActionScreenTests {
    let bob = "bob@127.0.0.1:7000", me = "alice@127.0.0.1:7000"
    let day1: UInt64 = 1_700_000_000_000

    func state() -> AppState {
        var s = AppState(account: me)
        s.connection = .connected
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.focus(dm(bob))
        var question = chat(1, from: bob, in: bob, at: day1, text: "Lunch at noon?")
        question.reactions = [Reaction(author: me, emoji: "👍"), Reaction(author: bob, emoji: "👍"), Reaction(author: "x", emoji: "🎉")]
        s.apply(message: question)
        var reply = chat(2, from: me, in: bob, direction: .outgoing, at: day1 + 60_000, text: "Yes, see you there", state: .read)
        reply.replyTo = question.clientMessageId
        reply.edited = true
        s.apply(message: reply)
        var gone = chat(3, from: bob, in: bob, at: day1 + 120_000, text: "")
        gone.deleted = true
        s.apply(message: gone)
        var theirs = chat(4, from: bob, in: bob, at: day1 + 180_000, text: "Great")
        theirs.replyTo = reply.clientMessageId
        s.apply(message: theirs)
        s.conversations[dm(bob)]?.reachedStart = true
        return s
    }

    /// The screen's text, then per row the styles of its cells (one letter each: S selected, Q quote,
    /// R reaction, E edited/deleted, . anything else), so the golden shows where the highlight lies.
    func screen(_ s: AppState, width: Int = 80, height: Int = 14) -> String {
        let canvas = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: width, height: height, now: day1)
        var styles: [String] = []
        for y in 0..<canvas.height {
            styles.append(String((0..<canvas.width).map { x -> Character in
                switch canvas.cells[y * canvas.width + x].style {
                case .selected: "S"
                case .quote: "Q"
                case .reaction: "R"
                case .edited: "E"
                default: "."
                }
            }))
        }
        return canvas.text() + "\n" + styles.joined(separator: "\n")
    }

    func golden(_ name: String, _ text: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).txt")
        if ProcessInfo.processInfo.environment["PARLEY_UPDATE_GOLDEN"] == "1" { try (text + "\n").write(to: url, atomically: true, encoding: .utf8) }
        #expect(text + "\n" == (try String(contentsOf: url, encoding: .utf8)), "screen differs from Golden/\(name).txt")
    }

    @Test func quotesReactionsEditedAndDeletedAreShown() throws {
        let text = screen(state())
        try golden("message-actions-80x14", text)
        #expect(text.contains("┌ bob: Lunch at noon?") && text.contains("┌ me: Yes, see you there"))
        #expect(text.contains("👍 2  🎉 1") && text.contains("(edited)") && text.contains("🗑 deleted"))
    }

    @Test func selectionModeHighlightsAndMovesThroughMessages() throws {
        var s = state()
        let entered = s.enterSelection()
        #expect(entered)
        #expect(s.selectedMessage?.text == "Great")
        s.moveSelection(by: -2)
        #expect(s.selectedMessage?.text == "Yes, see you there")
        let text = screen(s)
        try golden("message-actions-selected-80x14", text)
        #expect(text.contains("[select:"))
        s.moveSelection(by: -10)
        #expect(s.selectedMessage?.text == "Lunch at noon?")
        s.selectNewest()
        #expect(s.selectedMessage?.text == "Great")
        s.leaveSelection()
        #expect(s.selection == nil && !screen(s).contains("[select:"))
    }

    /// A long conversation: moving the selection up scrolls the pane so the selected message stays in view.
    @Test func theSelectedMessageStaysInView() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.focus(dm(bob))
        for n in 1...40 { s.apply(message: chat(n, from: bob, in: bob, at: day1, text: "line \(n)")) }
        s.enterSelection()
        s.moveSelection(by: -30)
        #expect(s.selectedMessage?.text == "line 10")
        let canvas = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: 60, height: 12, now: day1)
        #expect(canvas.text().contains("line 10"))
        #expect(canvas.cells.contains { $0.style == .selected })
    }

    /// A reaction and an edited text are the peer's: escapes and direction overrides never reach the screen.
    @Test func peerTextInReactionsAndEditsIsNeutralised() {
        var s = state()
        var evil = chat(9, from: bob, in: bob, at: day1 + 240_000, text: "evil \u{1B}]0;owned\u{07} \u{202E}txt.exe")
        evil.edited = true
        evil.reactions = [Reaction(author: bob, emoji: "\u{1B}[2J"), Reaction(author: me, emoji: "\u{9B}31m")]
        s.apply(message: evil)
        let text = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: 80, height: 14, now: day1).text()
        #expect(text.contains("(edited)"))
        #expect(!text.unicodeScalars.contains { $0 != "\n" && PeerText.isDangerous($0) }, "\(text.debugDescription)")
        #expect(!ConversationPane.reactionLine(evil.reactions).unicodeScalars.contains { PeerText.isDangerous($0) })
    }

    /// In every shipped theme the selected message differs from plain text and from the other new elements.
    @Test func everyThemeShowsTheSelection() throws {
        let library = ThemeLibrary(directories: [ThemeLibrary.shippedDirectory])
        var lines: [String] = []
        for name in library.names() {
            let theme = try library.load(name)
            #expect(theme[.selected] != theme[.messageText], "\(name)")
            #expect(theme[.selected].background != .terminalDefault || theme[.selected].reverse, "\(name): the selection needs a bar")
            #expect(theme[.quote] != theme[.messageText] && theme[.edited] != theme[.messageText], "\(name)")
            lines.append(name + ": " + [ThemeKey.selected, .quote, .reaction, .edited].map { "\($0.rawValue)=\(describe(theme[$0]))" }.joined(separator: " "))
        }
        try golden("message-actions-themes", lines.joined(separator: "\n"))
    }

    func describe(_ style: ThemeStyle) -> String {
        func color(_ c: ThemeColor) -> String { if case .indexed(let n) = c { "\(n)" } else { "default" } }
        var words = [color(style.foreground) + " on " + color(style.background)]
        for (on, word) in [(style.bold, "bold"), (style.dim, "dim"), (style.reverse, "reverse"), (style.italic, "italic"), (style.underline, "underline")] where on {
            words.append(word)
        }
        return words.joined(separator: "+")
    }
}
