/// A key press as the front end sees it, decoded from curses (see `Terminal.readKeys`).
public enum Key: Hashable, Sendable {
    case char(Character)
    /// Control plus a letter, lower-case: `.ctrl("a")` is C-a.
    case ctrl(Character)
    /// Alt (or Escape then the key): `.meta("f")` is M-f.
    case meta(Character)
    case enter, tab, backTab, backspace, delete, escape
    case left, right, up, down, home, end, pageUp, pageDown
    case function(Int)
    case resize
    case wheelUp, wheelDown
    /// Text that arrived as one bracketed paste (may hold newlines).
    case paste(String)

    /// Parses a key as written in config.toml: `C-a`, `M-f`, `Enter`, `Tab`, `PageUp`, `F5`, `j`.
    public init?(spec: String) {
        let named: [String: Key] = [
            "enter": .enter, "return": .enter, "tab": .tab, "backtab": .backTab, "s-tab": .backTab, "backspace": .backspace,
            "delete": .delete, "del": .delete, "escape": .escape, "esc": .escape, "left": .left, "right": .right,
            "up": .up, "down": .down, "home": .home, "end": .end, "pageup": .pageUp, "pgup": .pageUp,
            "pagedown": .pageDown, "pgdn": .pageDown, "space": .char(" "),
        ]
        if let key = named[spec.lowercased()] { self = key; return }
        if spec.count == 3, spec.hasPrefix("C-") || spec.hasPrefix("c-") { self = .ctrl(Character(spec.suffix(1).lowercased())); return }
        if spec.count == 3, spec.hasPrefix("M-") || spec.hasPrefix("m-") { self = .meta(spec.last!); return }
        if spec.count >= 2, spec.first == "F" || spec.first == "f", let n = Int(spec.dropFirst()), (1...24).contains(n) { self = .function(n); return }
        if spec.count == 1 { self = .char(spec.first!); return }
        return nil
    }
}

/// Everything a key can be bound to: line editing and window actions. The raw values are the names used
/// in config.toml's [bindings] (parley(5)).
public enum Action: String, CaseIterable, Sendable {
    // Editing
    case forwardChar = "forward-char", backwardChar = "backward-char"
    case forwardWord = "forward-word", backwardWord = "backward-word"
    case beginningOfLine = "beginning-of-line", endOfLine = "end-of-line"
    case deleteChar = "delete-char", backwardDeleteChar = "backward-delete-char"
    case killLine = "kill-line", unixLineDiscard = "unix-line-discard"
    case killWord = "kill-word", backwardKillWord = "backward-kill-word"
    case yank, transposeChars = "transpose-chars"
    case historyPrev = "history-prev", historyNext = "history-next"
    case acceptLine = "accept-line", insertNewline = "insert-newline", complete
    // Windows
    case nextWindow = "next-window", prevWindow = "prev-window"
    case scrollUp = "scroll-up", scrollDown = "scroll-down", scrollTop = "scroll-top", scrollBottom = "scroll-bottom"
    case redraw, quit, closeOverlay = "close-overlay"
    /// Selection mode in the conversation: pick a message to reply to, edit, delete, react to or save.
    case selectMessages = "select-messages"
    case jumpToUnread = "jump-unread"

    public var isWindowAction: Bool {
        switch self {
        case .nextWindow, .prevWindow, .scrollUp, .scrollDown, .scrollTop, .scrollBottom, .redraw, .quit, .closeOverlay, .selectMessages,
             .jumpToUnread: true
        default: false
        }
    }
}

/// The default key bindings of both keymaps (vi normal mode has its own letters in `LineEditor`).
public enum Keymaps {
    public static let common: [Key: Action] = [
        .enter: .acceptLine, .tab: .complete, .left: .backwardChar, .right: .forwardChar, .home: .beginningOfLine,
        .end: .endOfLine, .backspace: .backwardDeleteChar, .delete: .deleteChar, .up: .historyPrev, .down: .historyNext,
        .pageUp: .scrollUp, .pageDown: .scrollDown,
        .ctrl("n"): .nextWindow, .ctrl("p"): .prevWindow, .ctrl("l"): .redraw, .meta("\r"): .insertNewline,
        .meta("\n"): .insertNewline, .function(12): .scrollBottom, .meta("s"): .selectMessages, .meta("u"): .jumpToUnread,
    ]

    public static let emacs: [Key: Action] = common.merging([
        .ctrl("a"): .beginningOfLine, .ctrl("e"): .endOfLine, .ctrl("f"): .forwardChar, .ctrl("b"): .backwardChar,
        .meta("f"): .forwardWord, .meta("b"): .backwardWord, .ctrl("d"): .deleteChar, .ctrl("h"): .backwardDeleteChar,
        .ctrl("k"): .killLine, .ctrl("u"): .unixLineDiscard, .meta("d"): .killWord, .ctrl("w"): .backwardKillWord,
        .meta("\u{7F}"): .backwardKillWord, .ctrl("y"): .yank, .ctrl("t"): .transposeChars, .escape: .closeOverlay,
        .meta("<"): .scrollTop, .meta(">"): .scrollBottom, .ctrl("j"): .insertNewline,
    ]) { _, new in new }

    /// vi insert mode: the common keys and the usual terminal control keys; Escape enters normal mode.
    public static let viInsert: [Key: Action] = common.merging([
        .ctrl("h"): .backwardDeleteChar, .ctrl("w"): .backwardKillWord, .ctrl("u"): .unixLineDiscard,
    ]) { _, new in new }
}
