import Foundation

/// The input line: readline-style editing over grapheme clusters (so a cursor step never splits an emoji
/// or a letter from its accent), history, a kill buffer, completion, and an emacs or vi keymap.
public struct LineEditor: Sendable {
    public enum Keymap: String, Sendable, CaseIterable { case emacs, vi }
    public enum Mode: Sendable { case insert, normal }

    public enum Outcome: Equatable, Sendable {
        case edited
        case submit(String)
        /// A bound window action for the controller (scrolling, switching, quitting).
        case window(Action)
        /// Tab: the controller supplies candidates through `complete(with:)`.
        case complete
        case ignored
    }

    public let keymap: Keymap
    public private(set) var mode: Mode = .insert
    public private(set) var text: [Character] = []
    public private(set) var cursor = 0
    public private(set) var history: [String] = []
    private var historyIndex: Int?
    private var draft: [Character] = []
    private var killBuffer: [Character] = []
    private var pendingOperator: Character?
    private let bindings: [Key: Action]
    public static let historyLimit = 500

    public init(keymap: Keymap = .emacs, overrides: [Key: Action] = [:]) {
        self.keymap = keymap
        bindings = (keymap == .emacs ? Keymaps.emacs : Keymaps.viInsert).merging(overrides) { _, new in new }
    }

    public var string: String { String(text) }
    public var isEmpty: Bool { text.isEmpty }

    public mutating func set(_ string: String) {
        text = Array(string)
        cursor = text.count
    }

    public mutating func handle(_ key: Key) -> Outcome {
        if case .paste(let pasted) = key {
            insert(pasted.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"))
            return .edited
        }
        if keymap == .vi && mode == .normal, let outcome = handleNormal(key) { return outcome }
        if keymap == .vi && key == .escape && mode == .insert {
            mode = .normal
            if cursor > 0 { cursor -= 1 }
            return .edited
        }
        if let action = bindings[key] { return perform(action) }
        switch key {
        case .char(let c) where mode == .insert:
            insert(String(c))
            return .edited
        default:
            return .ignored
        }
    }

    public mutating func perform(_ action: Action) -> Outcome {
        if action.isWindowAction { return .window(action) }
        switch action {
        case .forwardChar: cursor = min(text.count, cursor + 1)
        case .backwardChar: cursor = max(0, cursor - 1)
        case .forwardWord: cursor = wordEnd(from: cursor)
        case .backwardWord: cursor = wordStart(from: cursor)
        case .beginningOfLine: cursor = 0
        case .endOfLine: cursor = text.count
        case .deleteChar: if cursor < text.count { text.remove(at: cursor) }
        case .backwardDeleteChar:
            if cursor > 0 { cursor -= 1; text.remove(at: cursor) }
        case .killLine: kill(cursor..<text.count)
        case .unixLineDiscard: kill(0..<cursor)
        case .killWord: kill(cursor..<wordEnd(from: cursor))
        case .backwardKillWord: kill(wordStart(from: cursor)..<cursor)
        case .yank: insert(String(killBuffer))
        case .transposeChars:
            guard text.count >= 2, cursor > 0 else { break }
            let at = cursor == text.count ? cursor - 1 : cursor
            text.swapAt(at - 1, at)
            cursor = min(text.count, at + 1)
        case .historyPrev: recall(older: true)
        case .historyNext: recall(older: false)
        case .insertNewline: insert("\n")
        case .complete: return .complete
        case .acceptLine:
            let line = string
            remember(line)
            text = []
            cursor = 0
            historyIndex = nil
            if keymap == .vi { mode = .insert }
            return .submit(line)
        default: return .ignored
        }
        return .edited
    }

    // MARK: vi normal mode

    private mutating func handleNormal(_ key: Key) -> Outcome? {
        guard case .char(let c) = key else {
            if key == .enter { return perform(.acceptLine) }
            if key == .escape { pendingOperator = nil; return .edited }
            return nil
        }
        if let op = pendingOperator {
            pendingOperator = nil
            switch (op, c) {
            case ("d", "d"): kill(0..<text.count)
            case ("d", "w"): kill(cursor..<wordEnd(from: cursor))
            case ("d", "b"): kill(wordStart(from: cursor)..<cursor)
            case ("d", "$"): kill(cursor..<text.count)
            case ("c", "w"): kill(cursor..<wordEnd(from: cursor)); mode = .insert
            case ("c", "c"): kill(0..<text.count); mode = .insert
            default: break
            }
            clampNormal()
            return .edited
        }
        switch c {
        case "h": cursor = max(0, cursor - 1)
        case "l": cursor = min(max(0, text.count - 1), cursor + 1)
        case "w": cursor = min(max(0, text.count - 1), wordEnd(from: cursor) + (cursor < text.count ? 1 : 0))
        case "b": cursor = wordStart(from: cursor)
        case "e": cursor = max(0, wordEnd(from: min(text.count, cursor + 1)) - 1)
        case "0", "^": cursor = 0
        case "$": cursor = max(0, text.count - 1)
        case "x": if cursor < text.count { kill(cursor..<cursor + 1) }
        case "X": if cursor > 0 { kill(cursor - 1..<cursor) }
        case "D": kill(cursor..<text.count)
        case "C": kill(cursor..<text.count); mode = .insert
        case "p": if !killBuffer.isEmpty { cursor = min(text.count, cursor + 1); insert(String(killBuffer)); cursor -= 1 }
        case "P": if !killBuffer.isEmpty { insert(String(killBuffer)); cursor -= 1 }
        case "i": mode = .insert
        case "a": mode = .insert; cursor = min(text.count, cursor + 1)
        case "I": mode = .insert; cursor = 0
        case "A": mode = .insert; cursor = text.count
        case "S": kill(0..<text.count); mode = .insert
        case "k": recall(older: true)
        case "j": recall(older: false)
        case "d", "c": pendingOperator = c
        default:
            if let action = bindings[key] { return perform(action) }
            return .ignored
        }
        if mode == .normal { clampNormal() }
        return .edited
    }

    private mutating func clampNormal() { cursor = max(0, min(cursor, text.count - 1)) }

    // MARK: Completion

    /// The word the cursor ends, and where it starts (what Tab completes).
    public var wordBeforeCursor: (word: String, start: Int) {
        var start = cursor
        while start > 0, text[start - 1] != " " { start -= 1 }
        return (String(text[start..<cursor]), start)
    }

    /// Completes the word before the cursor: a single candidate is inserted with a trailing space, several
    /// are reduced to their common prefix. Returns the candidates still open (for the hint line).
    @discardableResult
    public mutating func complete(with candidates: [String]) -> [String] {
        let (word, start) = wordBeforeCursor
        let matching = candidates.filter { $0.lowercased().hasPrefix(word.lowercased()) }
        guard !matching.isEmpty else { return [] }
        let replacement = matching.count == 1 ? matching[0] + " " : commonPrefix(matching)
        guard replacement.count >= word.count else { return matching }
        text.replaceSubrange(start..<cursor, with: Array(replacement))
        cursor = start + replacement.count
        return matching.count == 1 ? [] : matching
    }

    private func commonPrefix(_ words: [String]) -> String {
        var prefix = Array(words[0])
        for word in words.dropFirst() {
            let chars = Array(word)
            var n = 0
            while n < prefix.count, n < chars.count, prefix[n].lowercased() == chars[n].lowercased() { n += 1 }
            prefix = Array(prefix.prefix(n))
        }
        return String(prefix)
    }

    // MARK: Helpers

    /// Inserts and re-segments, so a combining mark typed after its letter joins it in one cluster.
    private mutating func insert(_ string: String) {
        let before = String(text[..<cursor]) + string
        let after = String(text[cursor...])
        let joined = Array(before + after)
        cursor = max(0, min(joined.count, joined.count - Array(after).count))
        text = joined
    }

    private mutating func kill(_ range: Range<Int>) {
        let clamped = max(0, range.lowerBound)..<min(text.count, max(range.lowerBound, range.upperBound))
        guard !clamped.isEmpty else { return }
        killBuffer = Array(text[clamped])
        text.removeSubrange(clamped)
        cursor = clamped.lowerBound
    }

    private func isWord(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }

    private func wordEnd(from index: Int) -> Int {
        var i = index
        while i < text.count, !isWord(text[i]) { i += 1 }
        while i < text.count, isWord(text[i]) { i += 1 }
        return i
    }

    private func wordStart(from index: Int) -> Int {
        var i = index
        while i > 0, !isWord(text[i - 1]) { i -= 1 }
        while i > 0, isWord(text[i - 1]) { i -= 1 }
        return i
    }

    private mutating func remember(_ line: String) {
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty, history.last != line else { return }
        history.append(line)
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }

    private mutating func recall(older: Bool) {
        guard !history.isEmpty else { return }
        if older {
            if historyIndex == nil { draft = text; historyIndex = history.count }
            historyIndex = max(0, historyIndex! - 1)
            text = Array(history[historyIndex!])
        } else {
            guard let index = historyIndex else { return }
            if index + 1 >= history.count {
                historyIndex = nil
                text = draft
            } else {
                historyIndex = index + 1
                text = Array(history[index + 1])
            }
        }
        cursor = keymap == .vi && mode == .normal ? max(0, text.count - 1) : text.count
    }
}

