import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore

/// The demo's guide: a second account on its own engine in the same process, answering the user's
/// messages with short guidance. It reads what it is sent only to pick an answer, and logs nothing.
struct GuideBot: Sendable {
    let engine: Engine
    let user: AccountAddress

    func greet() async throws {
        try await engine.send(text: """
            Hi! I'm the Parley guide. Everything we write is end-to-end encrypted (PQXDH + Double Ratchet): \
            the relay only sees sealed envelopes. Say "help" for things to try, or type /verify to compare our safety number.
            """, to: user)
    }

    func run() async {
        let events = await engine.subscribe()
        let connection = Task { await engine.runConnection() }
        defer { connection.cancel() }
        for await event in events {
            guard case .message(let record) = event, record.direction == .incoming, record.conversation == .direct(user) else { continue }
            try? await engine.sendReceipt(to: user, read: true, messageIds: [record.clientMessageId])
            try? await engine.sendTyping(to: user, started: true)
            let reply = await answer(record.text)
            // A short pause so the typing indicator is visible before the answer.
            try? await Task.sleep(for: .milliseconds(700))
            _ = try? await engine.send(text: reply, to: user)
        }
    }

    func answer(_ text: String) async -> String {
        let words = text.lowercased()
        if words.contains("verif") || words.contains("safety") {
            let digits = (try? await engine.safetyNumber(with: user).digits) ?? ""
            let groups = digits.chunkedBy5()
            return """
                On my side our safety number is \(groups). Type /verify to see yours with its QR code: if the digits \
                match, run /verify guide \(groups) and my badge turns ✔ verified. With a real contact, compare in person or on a call.
                """
        }
        if words.contains("theme") || words.contains("colour") || words.contains("color") {
            return "Type /theme to list the themes, then e.g. /theme solarized-dark or /theme mono. Your own go in ~/.config/parley/themes (parley-themes(5))."
        }
        if words.contains("help") || words.contains("what") || words == "?" {
            return """
                Things to try: /verify (safety number and QR code), /theme NAME, /search WORD, /devices, /set keymap vi, \
                PgUp/PgDn or the mouse wheel to scroll, C-n/C-p to switch windows, Tab to complete commands. /help lists everything.
                """
        }
        if words.hasPrefix("hi") || words.hasPrefix("hello") || words.hasPrefix("hey") {
            return "Hello! Your message reached me encrypted and I decrypted it here. Ask me about \"verify\", \"themes\" or \"help\"."
        }
        let count = text.count
        return "Got your \(count)-character message, decrypted on my side — the relay never saw it. Try \"verify\", \"themes\" or \"help\"."
    }
}

extension String {
    func chunkedBy5() -> String {
        stride(from: 0, to: count, by: 5).map { start -> String in
            let s = index(startIndex, offsetBy: start)
            return String(self[s..<index(s, offsetBy: Swift.min(5, count - start))])
        }.joined(separator: " ")
    }
}
