import Foundation
import ParleyStore
import Testing
@testable import ParleyTUI

/// Screens rendered off-screen and compared with golden files (Tests/ParleyTUITests/Golden). Regenerate
/// after a deliberate change with PARLEY_UPDATE_GOLDEN=1 and review the diff.
@Suite struct RendererTests {
    let bob = "bob@127.0.0.1:7000", me = "alice@127.0.0.1:7000"
    let day1: UInt64 = 1_700_000_000_000  // Tue 14 Nov 2023 22:13:20 UTC

    func sampleState() -> AppState {
        var s = AppState(account: me)
        s.connection = .connected
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.ensureRosterEntry(dm("carol@127.0.0.1:7000"), trust: .changed)
        s.apply(message: chat(1, from: "carol@127.0.0.1:7000", in: "carol@127.0.0.1:7000", at: day1))
        s.focus(dm(bob))
        s.apply(message: chat(2, from: bob, in: bob, at: day1, text: "Hello Alice! 漢字 and 😀 and 👨‍👩‍👧 and 🇫🇷"))
        s.apply(message: chat(3, from: me, in: bob, direction: .outgoing, at: day1 + 60_000, text: "Hi Bob", state: .read))
        s.apply(message: chat(4, from: me, in: bob, direction: .outgoing, at: day1 + 3_600_000 * 3,
                              text: "A longer message that has to wrap over more than one line of the conversation pane", state: .delivered))
        s.apply(message: chat(5, from: bob, in: bob, direction: .system, at: day1 + 3_600_000 * 3, text: "The identity key of bob changed."))
        s.apply(message: chat(6, from: me, in: bob, direction: .outgoing, at: day1 + 3_600_000 * 3, text: "still there?", state: .pending))
        s.conversations[dm(bob)]?.reachedStart = true
        return s
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

    @Test func conversationScreen() throws {
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        var editor = LineEditor()
        for c in "typing 漢字" { _ = editor.handle(.char(c)) }
        let canvas = renderer.render(sampleState(), editor: editor, width: 100, height: 16, now: day1)
        try golden("conversation-100x16", canvas.text())
        #expect(canvas.cursor?.y == 15)
    }

    /// A contact's nickname replaces the address in the roster, the title, the message lines and the prompt.
    @Test func nicknamesAreShownInsteadOfAddresses() throws {
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        var state = sampleState()
        state.nicknames = [bob: "Bobby Tables", "carol@127.0.0.1:7000": "Carol"]
        let text = renderer.render(state, editor: LineEditor(), width: 100, height: 16, now: day1).text()
        try golden("nicknames-100x16", text)
        #expect(!text.contains("bob@127.0.0.1:7000 ✔") && !text.contains("bob:") && text.contains("Bobby Tables:"))
    }

    @Test func narrowScreenDropsTheRosterAndKeepsWidths() throws {
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        let canvas = renderer.render(sampleState(), editor: LineEditor(), width: 40, height: 14, now: day1)
        try golden("conversation-40x14", canvas.text())
        for line in canvas.text().split(separator: "\n") { #expect(DisplayWidth.width(line) <= 40) }
    }

    @Test func verificationScreenShowsSixtyDigitsInTwelveGroups() throws {
        var s = sampleState()
        let digits = String(repeating: "0123456789", count: 6)
        s.verification = AppState.Verification(peer: bob, digits: digits, qrLines: ["█▀▀█", "█▄▄█"], trust: .unverified)
        let canvas = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: 100, height: 20, now: day1)
        let text = canvas.text()
        #expect(text.contains("01234 56789 01234 56789"))
        let groups = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).filter { $0.count == 5 && $0.allSatisfy(\.isNumber) }
        #expect(groups.count == 12)
        #expect(text.contains("█▀▀█"))
        try golden("verify-100x20", text)
    }

    @Test func scrollingShowsOlderLinesAndMarksHowFar() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.focus(dm(bob))
        for n in 1...100 { s.apply(message: chat(n, from: bob, in: bob, at: day1, text: "line \(n)")) }
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        var text = renderer.render(s, editor: LineEditor(), width: 80, height: 12, now: day1).text()
        #expect(text.contains("line 100") && !text.contains("line 90:"))
        s.scroll(by: 20)
        text = renderer.render(s, editor: LineEditor(), width: 80, height: 12, now: day1).text()
        #expect(text.contains("line 80") && !text.contains("line 100") && text.contains("↓ 20 more"))
    }

    @Test func scrolledCountHasALineOfItsOwn() throws {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.focus(dm(bob))
        for n in 1...100 { s.apply(message: chat(n, from: bob, in: bob, at: day1, text: "line \(n) " + String(repeating: "words ", count: 14))) }
        s.scroll(by: 20)
        let text = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: 100, height: 14, now: day1).text()
        let row = try #require(text.split(separator: "\n").first { $0.contains("↓ 20 more") })
        #expect(!row.contains("line") && !row.contains("words"), "drawn over a message: \(row)")
        try golden("scrolled-100x14", text)
    }

    /// The identity-change warning as the window says it: longer than the status bar's room at 80 columns.
    static let securityNotice = "the identity key of bob@127.0.0.1:7000 has changed; sending stops until you verify or accept the new key (/verify, /trust)"

    @Test func aLongNoticeIsShownWholeAboveTheStatusBar() throws {
        var s = sampleState()
        s.say(Self.securityNotice, error: true)
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        let canvas = renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1)
        let text = canvas.text()
        // Every word of it on screen, in order, the status bar and input line still at the bottom.
        let shown = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        #expect(shown.contains(Self.securityNotice), "cut: \(text)")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[12].hasPrefix("[online] alice@127.0.0.1:7000"))
        for line in lines { #expect(DisplayWidth.width(line) <= 80) }
        try golden("notice-80x14", text)
        // A short notice stays on the bar, and the panes keep every row.
        s.say("sent notes.txt")
        let short = renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1).text()
        #expect(short.split(separator: "\n", omittingEmptySubsequences: false)[12].contains("│ sent notes.txt"))
    }

    @Test func daySeparatorBetweenDays() {
        var s = AppState(account: me)
        s.focus(dm(bob))
        s.apply(message: chat(1, from: bob, in: bob, at: day1, text: "yesterday"))
        s.apply(message: chat(2, from: bob, in: bob, at: day1 + 86_400_000, text: "today"))
        let text = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(s, editor: LineEditor(), width: 80, height: 12, now: day1).text()
        #expect(text.contains("Wednesday 15 November 2023"))
    }
}
