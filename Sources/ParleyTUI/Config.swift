import Foundation

/// How new messages from a contact announce themselves.
public enum NotifyMode: String, Sendable { case on, bell, off }

/// Which escape sequence carries a desktop notification: OSC 777 (urxvt, foot, wezterm, kitty…) or
/// OSC 9 (iTerm2, Windows Terminal…); off by default, since unknown terminals may print them.
public enum DesktopNotify: String, Sendable, CaseIterable { case off, osc777, osc9 }

/// `$XDG_CONFIG_HOME/parley/config.toml`, a TOML subset (documented in parley(5)); its top-level keys are
/// the settings of `SettingSpec.all`:
///
///     keymap = "vi"
///     theme = "solarized-dark"
///     bell = true
///     notify = "osc777"
///     timestamps = true
///     [bindings]
///     "C-o" = "next-window"
///     [contacts."bob@relay.example:7000"]
///     notify = "off"
public struct Config: Sendable, Equatable {
    public var keymap: LineEditor.Keymap = .emacs
    public var theme = "default"
    public var bell = true
    public var desktop: DesktopNotify = .off
    public var timestamps = true
    public var showRoster = true
    /// The command that opens links and attachments ("auto": xdg-open, or open on macOS).
    public var opener = "auto"
    public var inlineImages: InlineImages = .off
    public var notifySend: NotifySend = .auto
    /// Whether a notify-send notification shows the message's text (else only who sent it).
    public var notifyText = false
    /// How long messages are kept on this device (seconds); nil: for ever.
    public var retention: UInt64?
    public var bindings: [Key: Action] = [:]
    public var contactNotify: [String: NotifyMode] = [:]

    public init() {}

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let line: Int, message: String
        public var description: String { "config.toml line \(line): \(message)" }
    }

    public static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? "") + "/.config")
        return base + "/parley/config.toml"
    }

    public static func load(path: String) throws -> Config {
        guard let data = FileManager.default.contents(atPath: path) else { return Config() }
        return try parse(String(decoding: data, as: UTF8.self))
    }

    public static func parse(_ text: String) throws(ParseError) -> Config {
        var config = Config()
        var section: [String] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw ParseError(line: number, message: "unclosed section header") }
                section = splitKey(String(line.dropFirst().dropLast()))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw ParseError(line: number, message: "expected KEY = VALUE") }
            let key = unquote(line[..<eq].trimmingCharacters(in: .whitespaces))
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            try config.apply(section: section, key: key, value: value, line: number)
        }
        return config
    }

    private mutating func apply(section: [String], key: String, value: String, line: Int) throws(ParseError) {
        func string() throws(ParseError) -> String {
            guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else {
                throw ParseError(line: line, message: "\(key) takes a quoted string")
            }
            return String(value.dropFirst().dropLast())
        }
        func bool() throws(ParseError) -> Bool {
            guard value == "true" || value == "false" else { throw ParseError(line: line, message: "\(key) takes true or false") }
            return value == "true"
        }
        switch section.first {
        case nil:
            guard let setting = SettingSpec.named(key) else { throw ParseError(line: line, message: "unknown setting '\(key)'") }
            let word = setting.kind == .flag ? SettingSpec.onOff(try bool()) : try string()
            guard setting.write(&self, word) else { throw ParseError(line: line, message: setting.fileComplaint) }
        case "bindings":
            guard let k = Key(spec: key) else { throw ParseError(line: line, message: "unknown key '\(key)'") }
            guard let action = Action(rawValue: try string()) else { throw ParseError(line: line, message: "unknown action in binding for '\(key)'") }
            bindings[k] = action
        case "contacts":
            guard section.count == 2 else { throw ParseError(line: line, message: "use [contacts.\"ADDRESS\"]") }
            guard key == "notify", let mode = NotifyMode(rawValue: try string()) else {
                throw ParseError(line: line, message: "contacts take notify = \"on\" | \"bell\" | \"off\"")
            }
            contactNotify[section[1]] = mode
        default:
            throw ParseError(line: line, message: "unknown section [\(section.joined(separator: "."))]")
        }
    }

    public func notifyMode(for contact: String) -> NotifyMode { contactNotify[contact] ?? .on }

    private static func stripComment(_ line: String) -> String {
        var inString = false
        for (i, c) in line.enumerated() {
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(line.prefix(i)) }
        }
        return line
    }

    private static func splitKey(_ text: String) -> [String] {
        var parts: [String] = [], current = "", inString = false
        for c in text {
            if c == "\"" { inString.toggle(); continue }
            if c == "." && !inString { parts.append(current.trimmingCharacters(in: .whitespaces)); current = ""; continue }
            current.append(c)
        }
        parts.append(current.trimmingCharacters(in: .whitespaces))
        return parts
    }

    private static func unquote(_ text: String) -> String {
        text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
    }
}
