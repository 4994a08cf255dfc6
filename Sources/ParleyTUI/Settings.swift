import Foundation
import ParleyClient

/// One setting of the chat window, once: its config.toml key (also its `/set` key), the values it takes,
/// its default, what parley(5) says about it, how a value is read into `Config`, and how a change made by
/// `/set` takes effect in the running window. config.toml's loader, `/set` (its list, help, completion and
/// complaints) and parley(5)'s SETTINGS section all come from `SettingSpec.all`.
struct SettingSpec: Sendable {
    enum Kind: Sendable, Equatable {
        /// true or false in config.toml, on or off after `/set`.
        case flag
        /// One of these words, quoted in config.toml.
        case choice([String])
        /// Any quoted string in config.toml (a name looked up elsewhere).
        case name(placeholder: String)
        /// "off", or a duration such as "30d" (s, m, h, d, w).
        case duration
    }

    let name: String
    let kind: Kind
    /// The description in parley(5), one sentence or a few (plain text: the man section escapes it).
    let manual: String
    /// The value as `/set` shows it.
    let read: @Sendable (Config) -> String
    /// Stores a value (`/set`'s word: on/off for a flag); false when it is not one the setting takes.
    let write: @Sendable (inout Config, String) -> Bool
    /// How a `/set` change reaches the running window; nil when `/set` does not change it (another
    /// command does: `changedBy`).
    let applyLive: (@Sendable (ChatController) -> Void)?
    var changedBy: String? = nil

    /// The values `/set` offers and its help lists.
    var values: [String] {
        switch kind {
        case .flag: ["on", "off"]
        case .choice(let words): words
        case .name(let placeholder): [placeholder]
        case .duration: ["off", "DURATION"]
        }
    }

    /// What `/set` says about a value it does not take: "keymap is emacs or vi".
    var complaint: String { "\(name) is " + values.dropLast().joined(separator: ", ") + " or " + (values.last ?? "") }

    /// What config.toml's loader says about a value it does not take: `keymap is "emacs" or "vi"`.
    var fileComplaint: String {
        switch kind {
        case .flag: "\(name) takes true or false"
        case .choice(let words): "\(name) is " + words.dropLast().map { "\"\($0)\"" }.joined(separator: ", ") + " or \"\(words.last ?? "")\""
        case .name: "\(name) takes a quoted string"
        case .duration: "\(name) is \"off\" or a duration such as \"30d\" (s, m, h, d, w)"
        }
    }

    /// The default, as config.toml writes it.
    var defaultInFile: String { Self.inFile(read(Config()), kind) }

    static func inFile(_ value: String, _ kind: Kind) -> String {
        kind == .flag ? (value == "on" ? "true" : "false") : "\"\(value)\""
    }

    // MARK: The table

    static let all: [SettingSpec] = [
        SettingSpec(name: "keymap", kind: .choice(LineEditor.Keymap.allCases.map(\.rawValue)),
                    manual: "The input line's key map. In vi mode the line starts in insert mode; Escape enters normal mode, shown as [vi:N] in the status bar.",
                    read: { $0.keymap.rawValue },
                    write: { config, value in
                        guard let map = LineEditor.Keymap(rawValue: value) else { return false }
                        config.keymap = map
                        return true
                    },
                    applyLive: { c in
                        c.editor = LineEditor(keymap: c.config.keymap, overrides: c.config.bindings)
                        c.state.keymapLabel = c.config.keymap.rawValue
                    }),
        SettingSpec(name: "theme", kind: .name(placeholder: "NAME"),
                    manual: "The colour theme; see parley-themes(5).",
                    read: { $0.theme }, write: { config, value in config.theme = value; return true },
                    applyLive: nil, changedBy: "theme"),
        SettingSpec(name: "bell", kind: .flag,
                    manual: "Ring the terminal bell when a message arrives in a window you are not looking at.",
                    read: { onOff($0.bell) }, write: { config, value in flag(value).map { config.bell = $0 } != nil },
                    applyLive: { _ in }),
        SettingSpec(name: "notify", kind: .choice(DesktopNotify.allCases.map(\.rawValue)),
                    manual: "Desktop notifications through the terminal: OSC 777 (foot, WezTerm, kitty, urxvt) or OSC 9 (iTerm2, Windows Terminal, ConEmu). The notification names the sender only, never the text.",
                    read: { $0.desktop.rawValue },
                    write: { config, value in
                        guard let mode = DesktopNotify(rawValue: value) else { return false }
                        config.desktop = mode
                        return true
                    },
                    applyLive: { _ in }),
        SettingSpec(name: "notify_send", kind: .choice(NotifySend.allCases.map(\.rawValue)),
                    manual: "Desktop notifications through notify-send (libnotify) besides the bell and the OSC escapes, for the contacts whose /notify is on: auto uses notify-send when it is on PATH. The program is started without a shell; the notification names the sender.",
                    read: { $0.notifySend.rawValue },
                    write: { config, value in
                        guard let mode = NotifySend(rawValue: value) else { return false }
                        config.notifySend = mode
                        return true
                    },
                    applyLive: { _ in }),
        SettingSpec(name: "notify_text", kind: .flag,
                    manual: "Show the message's text in notify-send notifications (at most 200 characters); off, they say only who wrote.",
                    read: { onOff($0.notifyText) }, write: { config, value in flag(value).map { config.notifyText = $0 } != nil },
                    applyLive: { _ in }),
        SettingSpec(name: "opener", kind: .name(placeholder: "COMMAND"),
                    manual: "The program /open gives a link or a decrypted attachment to, as its last argument: auto is xdg-open (open on macOS). A command's words are split at spaces and it is started without a shell. Only http, https and mailto links are opened; an attachment is written to a private temporary file (0600, in a 0700 directory, removed when the window closes).",
                    read: { $0.opener }, write: { config, value in config.opener = value.isEmpty ? "auto" : value; return true },
                    applyLive: { _ in }),
        SettingSpec(name: "inline_images", kind: .choice(InlineImages.allCases.map(\.rawValue)),
                    manual: "Draw image attachments in the terminal with the kitty graphics protocol (kitty, WezTerm, Ghostty); auto uses it only in such a terminal and never inside tmux, kitty always (inside tmux through its passthrough). Only PNG files up to 4 MiB are sent, undecoded, downloaded when their message is on screen; other images keep their placeholder line. Sixel is not supported: it needs decoded pixels, and Parley decodes no image itself.",
                    read: { $0.inlineImages.rawValue },
                    write: { config, value in
                        guard let mode = InlineImages(rawValue: value) else { return false }
                        config.inlineImages = mode
                        return true
                    },
                    applyLive: { c in c.state.imageRows = ChatController.imageRows(c.config) }),
        SettingSpec(name: "timestamps", kind: .flag, manual: "Show message times.",
                    read: { onOff($0.timestamps) }, write: { config, value in flag(value).map { config.timestamps = $0 } != nil },
                    applyLive: { c in c.state.timestamps = c.config.timestamps }),
        SettingSpec(name: "roster", kind: .flag,
                    manual: "Show the roster pane (it hides itself on terminals narrower than 60 columns).",
                    read: { onOff($0.showRoster) }, write: { config, value in flag(value).map { config.showRoster = $0 } != nil },
                    applyLive: { c in c.state.showRoster = c.config.showRoster }),
        SettingSpec(name: "retention", kind: .duration,
                    manual: "How long this device keeps messages, e.g. \"30d\": older ones are deleted as disappearing messages are (overwritten in the store), also by parley and the daemon on this home once the window has stored the setting. An administrator's max_retention shortens it and refuses a longer /set.",
                    read: { $0.retention.map(DurationText.shown) ?? "off" },
                    write: { config, value in
                        if value == "off" { config.retention = nil; return true }
                        guard let seconds = DurationText.seconds(value), seconds > 0 else { return false }
                        config.retention = seconds
                        return true
                    },
                    applyLive: { c in c.applyRetention() }),
    ]

    /// The keys `/set` changes.
    static var settable: [SettingSpec] { all.filter { $0.applyLive != nil } }

    static func named(_ name: String) -> SettingSpec? { all.first { $0.name == name } }

    static func onOff(_ on: Bool) -> String { on ? "on" : "off" }

    /// A flag's word: on/off after `/set` (true/false as in config.toml too); nil for anything else.
    static func flag(_ word: String) -> Bool? {
        switch word {
        case "on", "true": true
        case "off", "false": false
        default: nil
        }
    }

    // MARK: parley(5)

    /// The roff source of parley(5)'s SETTINGS section (a test checks the page against it).
    static func manSection() -> String {
        var out = ".SH SETTINGS\n"
        out += ".\\\" Generated from Settings.swift by `parley help-commands --settings`; edit the table, not this text.\n"
        for setting in all {
            let values: String = switch setting.kind {
            case .flag: "true | false"
            case .choice(let words): words.map { "\\(dq" + roff($0) + "\\(dq" }.joined(separator: " | ")
            case .name(let placeholder): "\\(dq" + roff(placeholder) + "\\(dq"
            case .duration: "\\(dqoff\\(dq | \\(dqDURATION\\(dq"
            }
            out += ".TP\n.B \(roff(setting.name)) = \(values)\n"
            var text = setting.manual + " Default: " + setting.defaultInFile.replacingOccurrences(of: "\"", with: "") + "."
            if setting.applyLive != nil { text += " /set \(setting.name) changes it for the session." }
            if let command = setting.changedBy { text += " /\(command) changes it for the session." }
            out += roff(text).replacingOccurrences(of: "\"", with: "\\(dq") + "\n"
        }
        return out
    }

    private static func roff(_ text: String) -> String {
        var s = text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
        if s.hasPrefix(".") || s.hasPrefix("'") { s = "\\&" + s }
        return s
    }
}
