import Foundation
import ParleyClient
import ParleyProtocol
import ParleyQR
import ParleyRelayAPI
import ParleyStore

/// The slash commands (their names, arguments and help live in `CommandTable`).
extension ChatController {
    func runCommand(_ line: String) {
        let words = line.dropFirst().split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let name = words.first, let spec = CommandTable.find(name) else {
            state.say("unknown command \(line.split(separator: " ").first ?? "") — /help lists them", error: true)
            return
        }
        let args = Array(words.dropFirst())
        let rest = args.joined(separator: " ")
        switch spec.name {
        case "help":
            if let topic = args.first {
                guard let spec = CommandTable.find(topic.hasPrefix("/") ? String(topic.dropFirst()) : topic) else {
                    state.say("no command \(topic)", error: true)
                    return
                }
                state.log(CommandTable.helpLines(for: spec).joined(separator: "\n"))
            } else {
                state.log("Commands (Tab completes; /help COMMAND for more):")
                let column = (CommandTable.all.map { $0.usage.count }.max() ?? 0) + 4
                for line in CommandTable.helpLines() { state.log("  " + line, indent: column) }
                state.log("Keys: C-n/C-p next/previous window, PgUp/PgDn or the mouse wheel scroll, Tab completes, C-c quits.")
            }
            state.focus(nil)
        case "msg":
            guard let peer = resolve(args.first) else { return }
            open(peer)
            let text = args.dropFirst().joined(separator: " ")
            if !text.isEmpty { send(text, to: peer) }
        case "add": add(rest)
        case "close":
            guard let peer = state.focus else { state.say("the console cannot be closed", error: true); return }
            state.removeFromRoster(peer)
        case "verify": verify(args)
        case "trust":
            guard let peer = resolve(args.first ?? state.focus) else { return }
            engineCall("trusted \(peer)", reloading: peer) { try await $0.trust(peer) }
        case "devices": devices(args.first)
        case "attach": attach(args)
        case "save": save(args.first)
        case "retry", "delete": failed(retry: spec.name == "retry")
        case "search": search(rest)
        case "theme":
            if args.isEmpty {
                state.log("Themes: " + themes.names().joined(separator: ", ") + "   (current: \(state.themeName))")
                state.say("themes listed on the console")
            } else {
                setTheme(args[0])
            }
        case "set": set(args)
        case "notify": notify(args)
        case "next": state.cycleWindow(by: 1); afterFocus()
        case "prev": state.cycleWindow(by: -1); afterFocus()
        case "clear":
            if let peer = state.focus {
                // Only the view is emptied; /msg or a restart loads the history again.
                state.conversations[peer]?.messages.removeAll()
                state.conversations[peer]?.scroll = 0
                state.conversations[peer]?.reachedStart = true
            } else {
                state.console.removeAll()
            }
        case "info":
            let engine = engine, inbox = inbox
            Task {
                let account = await engine.account
                inbox.post { c in
                    c.state.log("You are \(account.address), device \(account.device.deviceId); relay \(engine.relay.endpoint.baseURL); "
                                + "connection: \(c.state.connection)")
                    c.state.focus(nil)
                }
            }
        case "quit": quit()
        default: state.say("/\(spec.name) is not available here", error: true)
        }
    }

    /// A contact named by full address, by its name before '@', or the focused conversation.
    func resolve(_ name: String?) -> String? {
        guard let name, !name.isEmpty else {
            state.say("which contact? (Tab completes names)", error: true)
            return nil
        }
        let all = state.roster.map(\.address) + ((try? store.contacts().map(\.address)) ?? [])
        if all.contains(name) { return name }
        let matches = Set(all.filter { ConversationPane.shortName($0) == name })
        if matches.count == 1 { return matches.first }
        state.say(matches.isEmpty ? "no contact \(name) — /add NAME@HOST:PORT first" : "\(name) is ambiguous: use the full address", error: true)
        return nil
    }

    /// Runs an engine call in a task; reports success on the status bar and refreshes `peer`'s window.
    func engineCall(_ success: String, reloading peer: String?, _ body: @escaping @Sendable (Engine) async throws -> Void) {
        let engine = engine, inbox = inbox
        Task {
            do {
                try await body(engine)
                inbox.post { c in
                    c.state.say(success)
                    if let peer { c.reload(peer) }
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    private func add(_ address: String) {
        let parsed: AccountAddress
        do { parsed = try AccountAddress(address) } catch {
            state.say("usage: /add NAME@HOST:PORT (\(error))", error: true)
            return
        }
        let engine = engine, inbox = inbox
        state.say("looking up \(address)…")
        Task {
            do {
                let contact = try await engine.addContact(parsed)
                inbox.post { c in
                    c.state.ensureRosterEntry(contact.address, trust: contact.trust)
                    c.open(contact.address)
                    c.state.say("added \(contact.address)")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("cannot add \(address): \(text)", error: true) }
            }
        }
    }

    private func verify(_ args: [String]) {
        var args = args[...]
        var peer = state.focus
        if let first = args.first, !first.allSatisfy(\.isNumber) {
            peer = resolve(first)
            args = args.dropFirst()
            if peer == nil { return }
        }
        guard let peer else { state.say("which contact? /verify CONTACT", error: true); return }
        let digits = args.joined()
        let engine = engine, inbox = inbox
        if digits.isEmpty {
            Task {
                do {
                    let number = try await engine.safetyNumber(with: peer)
                    let qr = (try? QRCode.encode(number.scannable)).map { QRRenderer.halfBlocks($0, quietZone: 2) } ?? []
                    inbox.post { c in
                        c.state.verification = AppState.Verification(peer: peer, digits: number.digits, qrLines: qr,
                                                                     trust: c.state.trust(of: peer) ?? .unverified)
                    }
                } catch {
                    let text = ChatController.describe(error)
                    inbox.post { $0.state.say(text, error: true) }
                }
            }
            return
        }
        Task {
            do {
                let outcome = try await engine.verify(peer, digits: digits)
                inbox.post { c in
                    c.reload(peer)
                    c.state.verification = nil
                    switch outcome {
                    case .verified: c.state.say("\(peer) is verified ✔")
                    default: c.state.say("the safety number does NOT match (\(outcome)) — \(peer) stays unverified", error: true)
                    }
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    private func attach(_ args: [String]) {
        guard let peer = state.focus else { state.say("open a conversation first: /msg CONTACT", error: true); return }
        guard let file = args.first else { state.say("usage: /attach FILE [CAPTION]", error: true); return }
        let path = Self.expand(file)
        let caption = args.dropFirst().joined(separator: " ")
        let engine = engine, inbox = inbox
        state.say("encrypting and uploading \((path as NSString).lastPathComponent)…")
        Task {
            do {
                let record = try await engine.sendAttachment(file: path, to: peer, caption: caption.isEmpty ? nil : caption)
                inbox.post { c in
                    c.showMessage(ChatMessage(record))
                    c.state.say("sent \((path as NSString).lastPathComponent)")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not sent: \(text)", error: true) }
            }
        }
    }

    private func save(_ target: String?) {
        guard let peer = state.focus else { state.say("open a conversation first", error: true); return }
        guard let newest = state.conversations[peer]?.messages.last(where: { $0.attachment != nil }),
              let sender = try? AccountAddress(newest.sender),
              let record = try? store.message(sentBy: sender, clientMessageId: newest.clientMessageId),
              let pointer = record.attachment else {
            state.say("no attachment in this conversation", error: true)
            return
        }
        let destination = Engine.attachmentDestination(fileName: pointer.fileName, requested: target.map(Self.expand), fallback: "attachment")
        let engine = engine, inbox = inbox
        state.say("downloading to \(destination)…")
        Task {
            do {
                try await engine.saveAttachment(of: record, to: destination)
                inbox.post { $0.state.say("saved \(destination)") }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not saved: \(text)", error: true) }
            }
        }
    }

    static func expand(_ path: String) -> String {
        path.hasPrefix("~/") ? (ProcessInfo.processInfo.environment["HOME"] ?? "") + path.dropFirst() : path
    }

    private func devices(_ name: String?) {
        let peer: String
        if let name { guard let p = resolve(name) else { return }; peer = p } else if let focus = state.focus { peer = focus } else {
            let engine = engine, inbox = inbox
            Task {
                let account = await engine.account
                let lines = account.deviceList.devices.map { "  device #\($0.deviceId)  \(ChatController.fingerprint($0.identityKey.bytes))" }
                inbox.post { c in c.state.log("Your devices (\(account.address)):\n" + lines.joined(separator: "\n")); c.state.focus(nil) }
            }
            return
        }
        guard let contact = try? store.contact(peer) else { state.say("no contact \(peer)", error: true); return }
        let devices = contact.account.deviceList?.devices ?? []
        state.log("Devices of \(peer) (\(TrustBadge.words(contact.trust).0)):")
        for device in devices { state.log("  device #\(device.deviceId)  \(ChatController.fingerprint(device.identityKey.bytes))") }
        if devices.isEmpty { state.log("  (no device list yet)") }
        state.focus(nil)
    }

    static func fingerprint(_ bytes: [UInt8]) -> String {
        bytes.prefix(16).map { String(format: "%02x", $0) }.joined().chunked(4).joined(separator: " ")
    }

    /// /retry and /delete: the newest failed message of the focused conversation.
    private func failed(retry: Bool) {
        guard let peer = state.focus else { state.say("open a conversation first: /msg CONTACT", error: true); return }
        let engine = engine, inbox = inbox
        Task {
            do {
                guard let conversation = ConversationId(windowKey: peer), let failed = try await engine.newestFailed(in: conversation) else {
                    inbox.post { $0.state.say("no failed message in this conversation", error: true) }
                    return
                }
                if retry {
                    let record = try await engine.resend(failed)
                    inbox.post { c in
                        c.reload(peer)
                        c.state.say(record.state == .pending ? "sent again; it waits in the outbox" : "sent again")
                    }
                } else {
                    try await engine.discard(failed)
                    inbox.post { c in
                        c.reload(peer)
                        c.state.say("deleted the failed message")
                    }
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { c in
                    c.reload(peer)
                    c.state.say((retry ? "not sent: " : "not deleted: ") + text, error: true)
                }
            }
        }
    }

    private func search(_ text: String) {
        guard !text.isEmpty else { state.say("usage: /search TEXT", error: true); return }
        let hits = (try? store.search(text, limit: 50)) ?? []
        state.log("Search for \"\(text)\": \(hits.count) hit\(hits.count == 1 ? "" : "s")", style: .title)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        for hit in hits {
            let when = formatter.string(from: Date(timeIntervalSince1970: Double(hit.sentAt) / 1000))
            let who = hit.direction == .outgoing ? "me → \(hit.conversation)" : hit.sender.address
            state.log("  \(when) \(who): \(hit.text.replacingOccurrences(of: "\n", with: " "))")
        }
        state.focus(nil)
    }

    private func set(_ args: [String]) {
        guard let key = args.first else {
            state.log("keymap = \(editor.keymap.rawValue), bell = \(config.bell ? "on" : "off"), notify = \(config.desktop.rawValue), "
                      + "timestamps = \(state.timestamps ? "on" : "off"), roster = \(state.showRoster ? "on" : "off")")
            state.focus(nil)
            return
        }
        let value = args.count > 1 ? args[1] : ""
        let on = value == "on" || value == "true"
        switch key {
        case "keymap":
            guard let map = LineEditor.Keymap(rawValue: value) else { state.say("keymap is emacs or vi", error: true); return }
            config.keymap = map
            editor = LineEditor(keymap: map, overrides: config.bindings)
            state.keymapLabel = map.rawValue
        case "bell": config.bell = on
        case "notify":
            guard let mode = DesktopNotify(rawValue: value) else { state.say("notify is off, osc777 or osc9", error: true); return }
            config.desktop = mode
        case "timestamps": state.timestamps = on
        case "roster": state.showRoster = on
        default: state.say("unknown setting \(key) (\(CommandTable.settingNames.joined(separator: ", ")))", error: true); return
        }
        state.say("\(key) = \(value)")
    }

    private func notify(_ args: [String]) {
        var args = args[...]
        var peer = state.focus
        if args.count == 2 { peer = resolve(args.first); args = args.dropFirst() }
        guard let peer, let word = args.first, let mode = NotifyMode(rawValue: word) else {
            state.say("usage: /notify [CONTACT] on|off|bell", error: true)
            return
        }
        config.contactNotify[peer] = mode
        try? store.setSetting("tui.notify." + peer, mode.rawValue)
        state.say("notifications from \(peer): \(mode.rawValue)")
    }
}

extension String {
    func chunked(_ size: Int) -> [String] {
        stride(from: 0, to: count, by: size).map { start in
            let s = index(startIndex, offsetBy: start)
            return String(self[s..<index(s, offsetBy: min(size, count - start))])
        }
    }
}
