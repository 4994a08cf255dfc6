import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore

/// The slash commands (their names, arguments and help live in `CommandTable`).
extension ChatController {
    func runCommand(_ line: String) {
        let words = line.dropFirst().split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard let name = words.first, let spec = CommandTable.find(name) else {
            state.say("unknown command \(line.split(separator: " ").first ?? "") — /help lists them", error: true)
            return
        }
        spec.run(self, Array(words.dropFirst()))
    }

    func help(_ args: [String]) {
        if let topic = args.first {
            guard let spec = CommandTable.find(topic.hasPrefix("/") ? String(topic.dropFirst()) : topic) else {
                state.say("no command \(topic)", error: true)
                return
            }
            show(Overlay(title: "Help: /" + spec.name, lines: CommandTable.helpLines(for: spec).map { Overlay.Line($0) }))
        } else {
            let column = (CommandTable.all.map { $0.usage.count }.max() ?? 0) + 4
            var lines = [Overlay.Line("Commands (Tab completes; /help COMMAND for more):")]
            lines += CommandTable.helpLines().map { Overlay.Line("  " + $0, indent: column) }
            lines.append(Overlay.Line(""))
            lines.append(Overlay.Line(Self.keysHelp))
            show(Overlay(title: "Help", lines: lines))
        }
    }

    static let keysHelp = "Keys: C-n/C-p next/previous window, PgUp/PgDn or the mouse wheel scroll, M-u jumps to the new messages, "
        + "Tab completes, Esc closes this, C-c quits."


    func message(_ args: [String]) {
        if case let (name, rest)? = Self.name(in: args), let group = groupNamed(name) {
            open(.group(group))
            if !rest.isEmpty { send(rest.joined(separator: " "), to: .group(group)) }
            return
        }
        guard let peer = resolve(args.first) else { return }
        open(peer)
        let text = args.dropFirst().joined(separator: " ")
        if !text.isEmpty { send(text, to: peer) }
    }

    func closeWindow() {
        guard let peer = state.focus else { state.say("the console cannot be closed", error: true); return }
        state.removeFromRoster(peer)
    }

    func theme(_ name: String?) {
        guard let name else {
            state.log("Themes: " + themes.names().joined(separator: ", ") + "   (current: \(state.themeName))")
            state.say("themes listed on the console")
            return
        }
        setTheme(name)
    }

    func clearWindow() {
        guard let peer = state.focus else { state.console.removeAll(); return }
        // Only the view is emptied; /msg or a restart loads the history again.
        state.conversations[peer]?.messages.removeAll()
        state.conversations[peer]?.scroll = 0
        state.conversations[peer]?.reachedStart = true
    }

    func info() {
        let engine = engine, inbox = inbox
        Task {
            let account = await engine.account
            inbox.post { c in
                let lines = ["You are \(account.address), device \(account.device.deviceId)", "Relay: \(engine.relay.endpoint.baseURL)",
                             "Connection: \(c.state.connection)"]
                let blocked = ((try? engine.contacts()) ?? []).filter(\.blocked).map { c.state.shownName(of: $0.address.description) }
                let all = lines + [blocked.isEmpty ? "Blocked: nobody" : "Blocked: " + blocked.joined(separator: ", ")]
                c.state.log(all.joined(separator: "; "))
                c.show(Overlay(title: "Info", lines: all.map { Overlay.Line($0) }))
            }
        }
    }

    /// The conversation a name typed after a command means: a roster entry's or a contact's full
    /// address; a contact's nickname or the local part of one contact's address (`Operations.resolve`,
    /// the one place short names are understood); else the local part of one roster entry's address.
    func resolve(_ name: String?) -> ConversationId? {
        guard let name, !name.isEmpty else {
            state.say("which contact? (Tab completes names)", error: true)
            return nil
        }
        let known = state.roster.map(\.conversation) + ((try? engine.contacts().map { ConversationId.direct($0.address) }) ?? [])
        if let exact = known.first(where: { $0.description == name }) { return exact }
        if !name.contains("@") {
            do { return .direct(try Operations(engine: engine).resolve(name)) } catch OperationError.refused(let text) {
                state.say(text, error: true)
                return nil
            } catch {}
        }
        let matches = Set(known.filter { ConversationPane.shortName($0.description) == name })
        if matches.count == 1 { return matches.first }
        state.say(matches.isEmpty ? "no contact \(name) — /add NAME@HOST:PORT first" : "\(name) is ambiguous: use the full address", error: true)
        return nil
    }

    /// The account a command about one contact means: the one `name` resolves to, or the focused
    /// conversation's when no name is given.
    func contactAddress(_ name: String?) -> AccountAddress? {
        guard let conversation = name == nil ? state.focus : resolve(name) else {
            if name == nil { state.say("which contact? (Tab completes names)", error: true) }
            return nil
        }
        return conversation.peer
    }

    /// Runs an engine call in a task; reports success on the status bar and refreshes `peer`'s window.
    func engineCall(_ success: String, reloading peer: ConversationId?, _ body: @escaping @Sendable (Engine) async throws -> Void) {
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

    static func expand(_ path: String) -> String {
        path.hasPrefix("~/") ? (ProcessInfo.processInfo.environment["HOME"] ?? "") + path.dropFirst() : path
    }

    func set(_ args: [String]) {
        guard let key = args.first else {
            state.log(CommandTable.settings.map { "\($0.name) = \($0.read(config))" }.joined(separator: ", "))
            state.focus(nil)
            return
        }
        let value = args.count > 1 ? args[1] : ""
        guard let setting = CommandTable.settings.first(where: { $0.name == key }) else {
            state.say("unknown setting \(key) (\(CommandTable.settingNames.joined(separator: ", ")))", error: true)
            return
        }
        var changed = config
        guard setting.write(&changed, value) else { state.say(setting.complaint, error: true); return }
        config = changed
        setting.applyLive?(self)
        state.say("\(key) = \(value)")
    }

    func notify(_ args: [String]) {
        var args = args[...]
        var conversation = state.focus
        if args.count == 2 { conversation = resolve(args.first); args = args.dropFirst() }
        guard let conversation, let word = args.first, let mode = NotifyMode(rawValue: word) else {
            state.say("usage: /notify [CONTACT] on|off|bell", error: true)
            return
        }
        // config.toml and the store name a conversation's setting by its text (a direct one's address).
        let key = conversation.description
        config.contactNotify[key] = mode
        try? engine.setSetting("tui.notify." + key, mode.rawValue)
        state.say("notifications from \(key): \(mode.rawValue)")
    }
}
