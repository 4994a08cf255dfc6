import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore

/// Attachments and links: /attachments lists every file of a conversation, /open hands a link or a
/// decrypted file to the desktop's opener. `openContent(of:)` is what a key on a selected message calls.
extension ChatController {
    /// Every attachment of the focused conversation, oldest first, from the store (not only what is loaded).
    func allAttachments(_ conversation: ConversationId) -> [ChatMessage]? {
        do {
            return try History.attachments(of: conversation, from: engine)
        } catch {
            state.say("cannot read the conversation: \(Self.describe(error))", error: true)
            return nil
        }
    }

    func listAttachments() {
        guard let conversation = state.focus else { state.say("open a conversation first: /msg CONTACT", error: true); return }
        guard let attachments = allAttachments(conversation) else { return }
        let title = state.shownName(of: conversation.description)
        guard !attachments.isEmpty else { state.say("no attachment in the conversation with \(title)"); return }
        state.log("Attachments with \(title), newest first (/save N [PATH], /open N):", style: .title)
        for line in AttachmentList.lines(attachments, shownName: state.shownName(of:)) { state.log(line) }
        state.focus(nil)
    }

    /// /open: the newest link or attachment of the conversation; /open N: attachment N from the newest;
    /// /open link [N]: the Nth link from the newest among the loaded messages.
    func openCommand(_ args: [String]) {
        guard let conversation = state.focus else { state.say("open a conversation first: /msg CONTACT", error: true); return }
        let messages = state.conversations[conversation]?.messages ?? []
        switch args.first {
        case nil:
            guard let message = messages.last(where: { $0.attachment != nil || !Links.find(in: $0.text).isEmpty }) else {
                state.say("no link or attachment in this conversation", error: true)
                return
            }
            openContent(of: message)
        case "link"?:
            let links = messages.reversed().flatMap { Links.find(in: $0.text).reversed() }
            let number = args.count > 1 ? Int(args[1]) : 1
            guard let number, number >= 1, args.count <= 2 else { state.say("usage: /open link [N]", error: true); return }
            guard number <= links.count else {
                state.say(links.isEmpty ? "no link in this conversation" : "this conversation shows \(links.count) link\(links.count == 1 ? "" : "s")", error: true)
                return
            }
            openLink(links[number - 1].url)
        case let word?:
            guard args.count == 1, let number = Int(word), number >= 1 else { state.say("usage: /open [N | link [N]]", error: true); return }
            guard let attachments = allAttachments(conversation) else { return }
            guard number <= attachments.count else {
                let count = attachments.count
                state.say(count == 0 ? "no attachment in this conversation" : "this conversation has \(count) attachment\(count == 1 ? "" : "s"); /open \(count) is the oldest", error: true)
                return
            }
            openAttachment(of: attachments[attachments.count - number])
        }
    }

    /// Opens what `message` carries: its attachment, else its first link (or the `link`th, from 0).
    func openContent(of message: ChatMessage, link: Int = 0) {
        if message.attachment != nil { openAttachment(of: message); return }
        let links = Links.find(in: message.text)
        guard link < links.count else { state.say("nothing to open in this message", error: true); return }
        openLink(links[link].url)
    }

    /// Hands `url` (exactly as the message shows it) to the opener, after naming it on the status line.
    func openLink(_ url: String) {
        switch Opener.argv(setting: config.opener, target: url) {
        case .failure(let problem): state.say(problem.description, error: true)
        case .success(let argv):
            do {
                state.say("opening \(url) with \((argv[0] as NSString).lastPathComponent)")
                try ExternalProgram.launch(argv)
            } catch {
                state.say(error.description, error: true)
            }
        }
    }

    /// Downloads and decrypts the attachment into a private temporary file, then opens that.
    func openAttachment(of message: ChatMessage) {
        guard let file = message.attachment else { return }
        // The opener is looked for before anything is downloaded.
        if case .failure(let problem) = Opener.argv(setting: config.opener, target: "/") { state.say(problem.description, error: true); return }
        let path: String
        do { path = try openedFiles.place(file.name, for: message.clientMessageId) } catch { state.say(error.description, error: true); return }
        let operations = Operations(engine: engine), inbox = inbox, sender = message.sender, id = message.clientMessageId
        let name = PeerText.forTerminal(file.name)
        state.say("downloading \(name)…")
        Task {
            do {
                _ = try await operations.saveAttachment(from: try AccountAddress(sender), id: id, to: path)
                inbox.post { c in
                    guard case .success(let argv) = Opener.argv(setting: c.config.opener, target: path) else { return }
                    do {
                        try ExternalProgram.launch(argv)
                        c.state.say("opened \(name) with \((argv[0] as NSString).lastPathComponent) (a private copy, removed when Parley closes)")
                    } catch {
                        c.state.say(String(describing: error), error: true)
                    }
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not opened: \(text)", error: true) }
            }
        }
    }

    /// Rows an inline image takes, when the terminal draws them (0: placeholders only).
    static func imageRows(_ config: Config) -> Int {
        config.inlineImages.usesKitty(environment: ProcessInfo.processInfo.environment) ? 10 : 0
    }

    /// Writes the kitty escapes that keep the frame's images in place, and fetches the ones not here yet.
    func drawImages(_ placements: [ImagePlacement]) {
        let (escapes, wanted) = imageDrawer.frame(placements)
        if !escapes.isEmpty { Self.writeAll(escapes) }
        for key in wanted { fetchImage(key) }
    }

    /// Downloads and decrypts an image for the terminal to draw (a PNG of at most `KittyGraphics.maxBytes`).
    func fetchImage(_ key: ImageKey) {
        let operations = Operations(engine: engine), engine = engine, inbox = inbox
        Task {
            var png: [UInt8]?
            if let (record, file) = try? await operations.attachment(from: try AccountAddress(key.sender), id: key.clientMessageId),
               file.size <= UInt64(KittyGraphics.maxBytes) {
                png = try? await engine.attachmentBytes(of: record)
            }
            let bytes = png
            inbox.post { $0.imageDrawer.received(key, bytes) }
        }
    }

    /// Writes all of `text` to the terminal (an image's escapes can be megabytes: write(2) may take part).
    static func writeAll(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// A notify-send notification for `message`, when the settings and the contact's /notify ask for one.
    func notifyDesktop(_ message: ChatMessage) {
        let peer = message.conversation.description
        guard config.notifySend == .auto,
              let argv = DesktopNotification.argv(config, program: ExternalProgram.locate("notify-send"), peer: peer,
                                                  shown: state.nicknames[peer], text: message.text) else { return }
        try? ExternalProgram.launch(argv)
    }
}

/// The lines /attachments shows: number (from the newest), size, name (neutralised), who sent it, when.
enum AttachmentList {
    static func lines(_ attachments: [ChatMessage], shownName: (String) -> String, timeZone: TimeZone = .current) -> [String] {
        let formatter = DateFormatter()
        formatter.timeZone = timeZone
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        let width = String(attachments.count).count
        return attachments.reversed().enumerated().map { index, message in
            let number = String(index + 1)
            let file = message.attachment!
            let from = message.direction == .outgoing ? "you" : shownName(message.sender)
            let when = formatter.string(from: Date(timeIntervalSince1970: Double(message.sentAt) / 1000))
            return "  " + String(repeating: " ", count: width - number.count) + number + "  "
                + ConversationPane.size(file.size).padding(toLength: 8, withPad: " ", startingAt: 0)
                + PeerText.forTerminal(file.name) + "  (from \(from), \(when))"
        }
    }
}
