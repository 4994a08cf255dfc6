import Foundation

/// The one list of slash commands: dispatch, `/help`, Tab completion and the COMMANDS section of parley(1)
/// are all rendered from it (a test checks the man page against `CommandTable.manSection()`).
public enum CommandTable {
    public static let all: [CommandSpec] = [
        CommandSpec(name: "help", arguments: "[COMMAND]", summary: "List the commands, or explain one.",
                    help: "Without an argument lists every command with its summary; with one shows its full help. "
                        + "The list is shown over the window: Up, Down, PgUp and PgDn scroll it, Esc closes it.",
                    completions: [.command], aliases: ["?"],
                    run: { c, args in c.help(args) }),
        CommandSpec(name: "msg", arguments: "CONTACT [TEXT]", summary: "Open the conversation with CONTACT, and send TEXT.",
                    help: "Focuses the conversation with CONTACT (opening it if needed). With TEXT, sends it there at once.",
                    completions: [.contact], aliases: ["query"],
                    run: { c, args in c.message(args) }),
        CommandSpec(name: "add", arguments: "NAME@HOST:PORT", summary: "Add a contact by address.",
                    help: "Fetches the account's key and device list from its relay and adds it to the roster (trusted on first use, unverified).",
                    completions: [],
                    run: { c, args in c.add(args.joined(separator: " ")) }),
        CommandSpec(name: "nick", arguments: "[CONTACT] NAME", summary: "Give a contact a nickname, shown instead of the address.",
                    help: "In a conversation /nick NAME names its contact; /nick CONTACT NAME names another (when CONTACT is one). "
                        + "Control characters and direction overrides are dropped, at most 40 characters, no '@'. /nick with an empty NAME (\"\") removes it.",
                    completions: [.contact],
                    run: { c, args in c.nick(args) }),
        CommandSpec(name: "remove", arguments: "[CONTACT]", summary: "Forget a contact and its sessions; the history is kept.",
                    help: "Removes the contact (the focused conversation's, or CONTACT) and the sessions with their devices. The conversation's history stays; /add brings the contact back.",
                    completions: [.contact],
                    run: { c, args in c.remove(args.first) }),
        CommandSpec(name: "block", arguments: "[CONTACT]", summary: "Block a contact: their messages are dropped, nothing is sent to them.",
                    help: "A blocked contact's messages are decrypted and acknowledged to the relay but never stored or shown; sending to them is refused. /unblock undoes it.",
                    completions: [.contact],
                    run: { c, args in c.block(args.first, true) }),
        CommandSpec(name: "unblock", arguments: "[CONTACT]", summary: "Unblock a contact.",
                    help: "What the contact sends from now on arrives again (what came while blocked is gone).",
                    completions: [.contact],
                    run: { c, args in c.block(args.first, false) }),
        CommandSpec(name: "disappear", arguments: "[CONTACT] [TIMER]", summary: "Set a conversation's disappearing-message timer (off, 30s, 10m, 1h, 7d, 4w).",
                    help: "Sets the timer for both sides and your other devices; each message is deleted TIMER after a device stored it, on every device. Without TIMER, shows it. The title shows the timer in force.",
                    completions: [.contact],
                    run: { c, args in c.disappear(args) }),
        CommandSpec(name: "close", arguments: "", summary: "Close the current conversation window.",
                    help: "Removes the conversation from the roster until a message arrives or /msg opens it again. History is kept.",
                    completions: [],
                    run: { c, _ in c.closeWindow() }),
        CommandSpec(name: "group", arguments: "new NAME CONTACT…", summary: "Start a group with these contacts and open its window.",
                    help: "Creates the group NAME (in quotes when it has spaces) with every device of each CONTACT and of your own account as members, "
                        + "and opens its window, where what you type goes to every member. Each member must have run Parley once (it "
                        + "publishes the keys a group needs). Groups are in the roster with # and their member count; C-n/C-p or /msg NAME open one.",
                    completions: [.words(["new"]), .none, .contacts],
                    run: { c, args in c.group(args) }),
        CommandSpec(name: "invite", arguments: "CONTACT…", summary: "Add contacts to this group (in a group's window).",
                    help: "Adds every device of each CONTACT to the focused group; they read what is sent from now on, not what came before. "
                        + "Every member sees a notice.",
                    completions: [.contacts],
                    run: { c, args in c.invite(args) }),
        CommandSpec(name: "kick", arguments: "MEMBER…", summary: "Remove members from this group (in a group's window).",
                    help: "Removes every device of each MEMBER (an address, a nickname or a unique local part; Tab completes the members) "
                        + "from the focused group: they read nothing sent after. Every member sees a notice.",
                    completions: [.members],
                    run: { c, args in c.kick(args) }),
        CommandSpec(name: "leave", arguments: "", summary: "Leave this group (in a group's window); its history stays.",
                    help: "Takes your devices out of the focused group: nothing more is read here and nothing can be sent. Your other devices "
                        + "go at once, this one as soon as another member's device reads the request and commits it (no member can commit "
                        + "its own removal), when they see the notice. The window keeps the history until /close.",
                    completions: [],
                    run: { c, _ in c.leaveGroup() }),
        CommandSpec(name: "rename", arguments: "NAME", summary: "Rename this group (in a group's window).",
                    help: "Gives the focused group a new name, which every member sees with a notice. "
                        + "Control characters and direction overrides are dropped.",
                    completions: [],
                    run: { c, args in c.renameGroup(args) }),
        CommandSpec(name: "members", arguments: "", summary: "List this group's members and how far you trust each (in a group's window).",
                    help: "Shows each member account over the window with its verification state (verified, unverified, KEY CHANGED, "
                        + "or not a contact) and how many of its devices are in the group; Esc closes it. /verify CONTACT compares a member's safety number.",
                    completions: [],
                    run: { c, _ in c.members() }),
        CommandSpec(name: "verify", arguments: "[CONTACT] [DIGITS]", summary: "Show or confirm a contact's safety number.",
                    help: "Without DIGITS opens the verification screen: the 60-digit safety number in 12 groups of 5 and its QR code. "
                        + "Compare it with your contact in person or on a call. With DIGITS (spaces allowed) marks the contact verified when they match.",
                    completions: [.contact],
                    run: { c, args in c.verify(args) }),
        CommandSpec(name: "trust", arguments: "[CONTACT]", summary: "Accept a contact's current identity key without verifying.",
                    help: "After a key change sending stops; /trust accepts the new key (the contact becomes unverified), /verify confirms it.",
                    completions: [.contact],
                    run: { c, args in c.trust(args.first) }),
        CommandSpec(name: "devices", arguments: "[CONTACT]", summary: "List a contact's devices (or your own).",
                    help: "Shows the device ids in the contact's signed device list and the fingerprint of each identity key, over the window (Esc closes it).",
                    completions: [.contact],
                    run: { c, args in c.devices(args.first) }),
        CommandSpec(name: "attach", arguments: "FILE [CAPTION]", summary: "Send a file to the current conversation.",
                    help: "Encrypts FILE under a fresh key, uploads the ciphertext to your relay and sends the key inside the end-to-end-encrypted message (up to 100 MiB). ~ is your home directory.",
                    completions: [.file],
                    run: { c, args in c.attach(args) }),
        CommandSpec(name: "save", arguments: "[N] [PATH]", summary: "Save an attachment of this conversation (the newest, or the Nth from the newest).",
                    help: "Downloads, checks and decrypts a file of the conversation into PATH (default: its own name in the current directory; a directory keeps the name), mode 0600. N counts the conversation's attachments from the newest, reading up from the bottom: 1 (the default) is the newest, 2 the one above it; a PATH of only digits is written ./12. The status line names the attachment saved. An existing file is never replaced: choose another PATH.",
                    completions: [.file],
                    run: { c, args in c.save(args) }),
        CommandSpec(name: "attachments", arguments: "", summary: "List every attachment of this conversation, numbered from the newest.",
                    help: "Shows each file's number (what /save N and /open N take: 1 is the newest), size, name (control characters shown harmlessly) and who sent it when. The whole history is counted, not only what is on screen.",
                    completions: [],
                    run: { c, _ in c.listAttachments() }),
        CommandSpec(name: "open", arguments: "[N | link [N]]", summary: "Open a link or an attachment with the desktop's opener.",
                    help: "/open N decrypts attachment N (counted as /save counts) into a private temporary file (mode 0600 in a 0700 directory, removed when Parley closes) and opens it; /open link N opens the Nth link from the newest; /open alone the newest link or attachment. Only http, https and mailto links are opened, and the status line shows the exact link first. The opener is xdg-open, or the opener setting (parley(5)); it is started without a shell.",
                    completions: [],
                    run: { c, args in c.openCommand(args) }),
        CommandSpec(name: "retry", arguments: "", summary: "Send the newest failed message of this conversation again.",
                    help: "A message the relay refused for good is marked ✗ failed and no longer holds back later ones. /retry sends it again as a new message and removes the failed copy; /delete removes it.",
                    completions: [],
                    run: { c, _ in c.failed(retry: true) }),
        CommandSpec(name: "delete", arguments: "", summary: "Delete the newest failed message of this conversation.",
                    help: "Removes a message marked ✗ failed from the conversation on this device. Only failed messages can be deleted.",
                    completions: [],
                    run: { c, _ in c.failed(retry: false) }),
        CommandSpec(name: "search", arguments: "TEXT", summary: "Search the message history.",
                    help: "Searches every conversation for TEXT, case-insensitively, and lists the messages that hold it over the window, newest first: "
                        + "the conversation, the time and the matching line with the match marked. Up and Down choose one, Enter opens its "
                        + "conversation scrolled to it (highlighted), Esc closes the list.",
                    completions: [],
                    run: { c, args in c.search(args.joined(separator: " ")) }),
        CommandSpec(name: "unread", arguments: "", summary: "Jump to the new messages line of this conversation (M-u).",
                    help: "Opening a conversation with unread messages draws a \"new messages\" line above the first of them; it stays while "
                        + "the conversation is open. /unread (or M-u) scrolls it to the top of the window.",
                    completions: [],
                    run: { c, _ in c.jumpToUnread() }),
        CommandSpec(name: "theme", arguments: "[NAME]", summary: "Switch the colour theme, or list the themes.",
                    help: "Themes come from $XDG_CONFIG_HOME/parley/themes and the shipped themes; see parley-themes(5). The switch is live.",
                    completions: [.theme],
                    run: { c, args in c.theme(args.first) }),
        CommandSpec(name: "set", arguments: "[KEY [VALUE]]", summary: "Show or change a setting.",
                    help: "Settings: " + settings.map { "\($0.name) (\($0.values.joined(separator: "|")))" }.joined(separator: ", ") + ". "
                        + "Changes last for this session; put them in config.toml (parley(5)) to keep them.",
                    completions: [.setting, .settingValue],
                    run: { c, args in c.set(args) }),
        CommandSpec(name: "notify", arguments: "[CONTACT] on|off|bell", summary: "Choose how new messages from a contact announce themselves.",
                    help: "on: bell and desktop notification (OSC 777/9); bell: bell only; off: nothing.",
                    completions: [.contact, .notifyMode],
                    run: { c, args in c.notify(args) }),
        CommandSpec(name: "next", arguments: "", summary: "Go to the next window (C-n).", help: "Windows are the conversations in the roster.",
                    completions: [],
                    run: { c, _ in c.state.cycleWindow(by: 1); c.afterFocus() }),
        CommandSpec(name: "prev", arguments: "", summary: "Go to the previous window (C-p).", help: "Windows are the conversations in the roster.",
                    completions: [],
                    run: { c, _ in c.state.cycleWindow(by: -1); c.afterFocus() }),
        CommandSpec(name: "clear", arguments: "", summary: "Clear the messages shown in this window.",
                    help: "Only the screen is cleared; the history stays in the store and scrolling up brings it back.", completions: [],
                    run: { c, _ in c.clearWindow() }),
        CommandSpec(name: "info", arguments: "", summary: "Show your address, device and relay.",
                    help: "Shows this account's address, device id, the relay, the connection state and the blocked contacts over the window (Esc closes it).", completions: [],
                    run: { c, _ in c.info() }),
        CommandSpec(name: "quit", arguments: "", summary: "Leave Parley.", help: "Restores the terminal and exits. Unsent messages stay in the outbox.",
                    completions: [], aliases: ["exit", "q"],
                    run: { c, _ in c.quit() }),
    ]

    public static func find(_ name: String) -> CommandSpec? {
        let key = name.lowercased()
        return all.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// The lines `/help` shows.
    public static func helpLines() -> [String] {
        let width = all.map { $0.usage.count }.max() ?? 0
        return all.map { $0.usage.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.summary }
    }

    public static func helpLines(for spec: CommandSpec) -> [String] {
        [spec.usage + (spec.aliases.isEmpty ? "" : "   (also /" + spec.aliases.joined(separator: ", /") + ")"), spec.summary, spec.help]
    }

    /// The `/set` keys (`SettingSpec.all`, less those another command changes).
    static var settings: [SettingSpec] { SettingSpec.settable }
    static let onOffValues = ["on", "off"]

    public static var settingNames: [String] { settings.map(\.name) }

    /// The roff source of parley(5)'s SETTINGS section (`SettingSpec.manSection()`).
    public static func settingsManSection() -> String { SettingSpec.manSection() }

    /// Candidates for the word being typed in `line` (up to the cursor), given the contact and theme names
    /// and the focused group's other members.
    public static func candidates(for line: String, contacts: [String], themes: [String], members: [String] = []) -> [String] {
        guard line.hasPrefix("/") else { return contacts }
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if words.count <= 1 { return all.map { "/" + $0.name } }
        guard let spec = find(String(words[0].dropFirst())) else { return [] }
        let position = words.count - 2
        var kind = position < spec.completions.count ? spec.completions[position] : .none
        // A list (CONTACT…, MEMBER…) goes on completing past its first position.
        if position >= spec.completions.count, let last = spec.completions.last, last == .contacts || last == .members { kind = last }
        switch kind {
        case .none: return []
        case .file: return files(matching: words.last ?? "")
        case .contact, .contacts: return contacts
        case .members: return members
        case .words(let choices): return choices
        case .theme: return themes
        case .setting: return settingNames
        case .command: return all.map(\.name)
        case .settingValue:
            // The values of the setting the word before names.
            let setting = position > 0 ? settings.first { $0.name == words[position] } : nil
            return setting?.values ?? onOffValues
        case .notifyMode: return ["on", "off", "bell"]
        }
    }

    /// Paths completing `partial` (directories get a trailing slash); ~ stands for the home directory.
    static func files(matching partial: String) -> [String] {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        let expanded = partial.hasPrefix("~/") ? home + partial.dropFirst() : partial
        let slash = expanded.lastIndex(of: "/")
        let directory = slash.map { String(expanded[...$0]) } ?? ""
        let shownDirectory = slash.map { _ in String(partial[...partial.lastIndex(of: "/")!]) } ?? ""
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        return entries.filter { !$0.hasPrefix(".") }.sorted().map { name in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: directory + name, isDirectory: &isDirectory)
            return shownDirectory + name + (isDirectory.boolValue ? "/" : "")
        }
    }

    /// The roff source of parley(1)'s TUI COMMANDS subsection.
    public static func manSection() -> String {
        var out = ".SS Commands in the chat window\n"
        out += ".\\\" Generated from CommandTable.swift by `parley help-commands --man`; edit the table, not this text.\n"
        for spec in all {
            out += ".TP\n.B \(roff(spec.usage))\n\(roff(spec.summary)) \(roff(spec.help))\n"
            if !spec.aliases.isEmpty { out += "Also: \(spec.aliases.map { "/" + $0 }.joined(separator: ", ")).\n" }
        }
        return out
    }

    private static func roff(_ text: String) -> String {
        var s = text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
        if s.hasPrefix(".") || s.hasPrefix("'") { s = "\\&" + s }
        return s
    }
}

