import Foundation

/// Everything on screen that has a colour, one key each. The theme files in themes/ set these keys;
/// parley-themes(5) documents them. Security states have their own keys so that a theme can never make a
/// changed identity look like a verified one.
public enum ThemeKey: String, CaseIterable, Sendable {
    case base = "base"
    case border = "border"
    case title = "title"
    case rosterHeader = "roster.header"
    case rosterItem = "roster.item"
    case rosterSelected = "roster.selected"
    case rosterUnread = "roster.unread"
    case rosterPending = "roster.pending"
    case timestamp = "conversation.timestamp"
    case daySeparator = "conversation.day"
    case ownName = "conversation.own"
    case peerName = "conversation.peer"
    case messageText = "conversation.text"
    case systemText = "conversation.system"
    case typing = "conversation.typing"
    case searchHit = "conversation.search"
    case link = "conversation.link"
    case selected = "conversation.selected"
    case quote = "conversation.quote"
    case reaction = "conversation.reaction"
    case edited = "conversation.edited"
    case unreadMarker = "conversation.unread"
    case statePending = "state.pending"
    case stateSent = "state.sent"
    case stateDelivered = "state.delivered"
    case stateRead = "state.read"
    case stateFailed = "state.failed"
    case statusBar = "status.bar"
    case statusConnected = "status.connected"
    case statusConnecting = "status.connecting"
    case statusDisconnected = "status.disconnected"
    case statusError = "status.error"
    case inputPrompt = "input.prompt"
    case inputText = "input.text"
    case inputMode = "input.mode"
    case completion = "input.completion"
    case verifyTitle = "verify.title"
    case verifyDigits = "verify.digits"
    case verifyQR = "verify.qr"
    case helpText = "help.text"
    case secEncrypted = "security.encrypted"
    case secVerified = "security.verified"
    case secUnverified = "security.unverified"
    case secChanged = "security.changed"
    case secUntrusted = "security.untrusted"
    case overlayBorder = "overlay.border"
    case overlaySelected = "overlay.selected"
}

/// A terminal colour: the terminal's default, one of the 256 indexed colours (0–7 basic, 8–15 bright).
public enum ThemeColor: Equatable, Sendable {
    case terminalDefault
    case indexed(Int)

    static let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]

    init?(parsing word: String) {
        let w = word.lowercased()
        if w == "default" { self = .terminalDefault; return }
        if let i = Self.names.firstIndex(of: w) { self = .indexed(i); return }
        if w.hasPrefix("bright-"), let i = Self.names.firstIndex(of: String(w.dropFirst(7))) { self = .indexed(8 + i); return }
        if w.hasPrefix("color"), let n = Int(w.dropFirst(5)), (0...255).contains(n) { self = .indexed(n); return }
        return nil
    }
}

/// How one key is drawn: colours plus attributes.
public struct ThemeStyle: Equatable, Sendable {
    public var foreground: ThemeColor = .terminalDefault
    public var background: ThemeColor = .terminalDefault
    public var bold = false, dim = false, underline = false, reverse = false, italic = false

    public init() {}

    /// `FG [on BG] [bold] [dim] [underline] [reverse] [italic]`, e.g. `bright-white on blue bold`.
    init(parsing text: String) throws(ThemeError) {
        var words = text.split(separator: " ").map(String.init)[...]
        while let word = words.popFirst() {
            switch word.lowercased() {
            case "bold": bold = true
            case "dim": dim = true
            case "underline": underline = true
            case "reverse": reverse = true
            case "italic": italic = true
            case "on":
                guard let next = words.popFirst(), let color = ThemeColor(parsing: next) else { throw .badValue(text) }
                background = color
            default:
                guard let color = ThemeColor(parsing: word) else { throw .badValue(text) }
                foreground = color
            }
        }
    }
}

public enum ThemeError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknownKey(String, line: Int)
    case badValue(String)
    case badLine(Int)
    case notFound(String)

    public var description: String {
        switch self {
        case .unknownKey(let key, let line): "line \(line): unknown theme key '\(key)' (see parley-themes(5) for the keys)"
        case .badValue(let value): "bad colour value '\(value)': expected FG [on BG] [bold|dim|underline|reverse|italic]"
        case .badLine(let line): "line \(line): expected KEY = VALUE"
        case .notFound(let name): "no theme named '\(name)'"
        }
    }
}

/// A parsed theme: every key has a style (keys a file leaves out take the built-in defaults).
public struct Theme: Sendable, Equatable {
    public var name: String
    public var description = ""
    /// How many colours the theme needs: 256, 16, 8 or 0 (monochrome, attributes only).
    public var colors = 8
    public private(set) var styles: [ThemeKey: ThemeStyle]

    public subscript(key: ThemeKey) -> ThemeStyle { styles[key] ?? ThemeStyle() }

    /// Parses a theme file: `# comments`, `name = …`, `description = …`, `colors = N`, and `KEY = STYLE`
    /// for the keys of `ThemeKey`. Unknown keys are an error, so a typo is never silently ignored.
    public static func parse(_ text: String, name: String) throws(ThemeError) -> Theme {
        var theme = Theme.builtIn
        theme.name = name
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "=") else { throw .badLine(number + 1) }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            switch key {
            case "name": theme.name = value
            case "description": theme.description = value
            case "colors":
                guard let n = Int(value), [0, 8, 16, 256].contains(n) else { throw .badValue(value) }
                theme.colors = n
            default:
                guard let themeKey = ThemeKey(rawValue: key) else { throw .unknownKey(key, line: number + 1) }
                theme.styles[themeKey] = try ThemeStyle(parsing: value)
            }
        }
        return theme
    }

    /// The fallback for every key: basic colours that read on dark and light terminals alike.
    public static let builtIn: Theme = {
        let spec: [ThemeKey: String] = [
            .base: "default", .border: "blue", .title: "default bold", .rosterHeader: "cyan bold", .rosterItem: "default",
            .rosterSelected: "black on cyan", .rosterUnread: "yellow bold", .rosterPending: "magenta",
            .timestamp: "blue", .daySeparator: "cyan", .ownName: "green bold", .peerName: "magenta bold",
            .messageText: "default", .systemText: "yellow", .typing: "cyan", .searchHit: "black on yellow", .link: "blue underline",
            .selected: "black on white", .quote: "cyan dim", .reaction: "yellow", .edited: "default dim italic",
            .statePending: "yellow", .stateSent: "default", .stateDelivered: "green", .stateRead: "cyan bold",
            .stateFailed: "red bold", .statusBar: "white on blue", .statusConnected: "green on blue bold",
            .statusConnecting: "yellow on blue", .statusDisconnected: "red on blue bold", .statusError: "white on red bold",
            .inputPrompt: "green bold", .inputText: "default", .inputMode: "yellow bold", .completion: "cyan",
            .verifyTitle: "bold", .verifyDigits: "bold", .verifyQR: "black on white", .helpText: "default",
            .secEncrypted: "green", .secVerified: "green bold", .secUnverified: "yellow", .secChanged: "white on red bold",
            .secUntrusted: "red bold", .unreadMarker: "red bold", .overlayBorder: "cyan", .overlaySelected: "black on cyan",
        ]
        var styles: [ThemeKey: ThemeStyle] = [:]
        for (key, value) in spec { styles[key] = try! ThemeStyle(parsing: value) }
        return Theme(name: "builtin", description: "built-in defaults", colors: 8, styles: styles)
    }()
}
