import CNcurses
#if canImport(Glibc)
import Glibc
#endif

/// The only code that talks to curses: start-up and restore, colour pairs from a theme, copying a
/// `Canvas` to the screen, and decoding key presses (including bracketed paste and the mouse wheel).
/// Used from the UI thread only.
final class Terminal {
    private(set) var width = 0, height = 0
    private var pairs: [ThemeKey: (attrs: attr_t, pair: Int16)] = [:]
    private var ended = false

    init() {
        DisplayWidth.prepareLocale()
        TerminalRestore.saveModes()
        parley_set_escdelay(25)
        // The size comes from the terminal (ioctl), never from $LINES/$COLUMNS a parent process left set:
        // curses would believe those over the real window and never follow a resize.
        unsetenv("LINES")
        unsetenv("COLUMNS")
        initscr()
        cbreak()
        noecho()
        nonl()
        keypad(parley_stdscr(), true)
        nodelay(parley_stdscr(), true)
        if has_colors() {
            start_color()
            use_default_colors()
        }
        mousemask(parley_button4_pressed() | parley_button5_pressed(), nil)
        mouseinterval(0)
        TerminalRestore.write("\u{1B}[?2004h")  // bracketed paste: a pasted block arrives as one event
        TerminalRestore.installFatalHandlers()
        width = Int(parley_cols())
        height = Int(parley_lines())
    }

    func end() {
        guard !ended else { return }
        ended = true
        TerminalRestore.write("\u{1B}[?2004l")
        endwin()
    }

    var colorCount: Int { has_colors() ? Int(parley_colors()) : 0 }

    /// Allocates a colour pair per theme key, bending colours the terminal lacks onto ones it has.
    func apply(_ theme: Theme) {
        pairs = [:]
        let colors = colorCount
        for (index, key) in ThemeKey.allCases.enumerated() {
            let style = theme[key]
            var attrs = parley_a_normal()
            if style.bold { attrs |= parley_a_bold() }
            if style.dim { attrs |= parley_a_dim() }
            if style.underline { attrs |= parley_a_underline() }
            if style.italic { attrs |= parley_a_italic() }
            var reverse = style.reverse
            var pair: Int16 = 0
            if colors >= 8 {
                let n = Int16(index + 1)
                init_pair(n, Self.number(style.foreground, colors: colors, bold: &attrs),
                          Self.number(style.background, colors: colors, bold: &attrs))
                pair = n
            } else if style.background != .terminalDefault {
                reverse = true  // no colours: a background becomes reverse video so selections stay visible
            }
            if reverse { attrs |= parley_a_reverse() }
            pairs[key] = (attrs, pair)
        }
    }

    private static func number(_ color: ThemeColor, colors: Int, bold: inout attr_t) -> Int16 {
        switch color {
        case .terminalDefault: return -1
        case .indexed(let n) where n < colors: return Int16(n)
        case .indexed(let n) where n < 16:
            bold |= parley_a_bold()  // bright colours on an 8-colour terminal: the basic colour, bold
            return Int16(n - 8)
        case .indexed: return -1
        }
    }

    func draw(_ canvas: Canvas) {
        var buffer = [wchar_t](repeating: 0, count: 8)
        for y in 0..<min(canvas.height, height) {
            for x in 0..<min(canvas.width, width) {
                let cell = canvas[x, y]
                if cell.text.isEmpty { continue }
                let style = pairs[cell.style] ?? (parley_a_normal(), 0)
                let scalars = cell.text.first.map(DisplayWidth.drawable) ?? [" "]
                for (i, s) in scalars.enumerated() { buffer[i] = wchar_t(bitPattern: s.value) }
                buffer[scalars.count] = 0
                // The last column of the last line: curses would scroll; that cell is simply skipped.
                if y == height - 1 && x == width - 1 { continue }
                _ = parley_put_cluster(Int32(y), Int32(x), buffer, style.attrs, style.pair)
            }
        }
        if let cursor = canvas.cursor {
            curs_set(1)
            move(Int32(cursor.y), Int32(min(cursor.x, width - 1)))
        } else {
            curs_set(0)
        }
        refresh()
    }

    func updateSize() {
        width = Int(parley_cols())
        height = Int(parley_lines())
    }

    func bell() { beep() }

    /// The next refresh repaints every cell (C-l, and after a resize).
    func forceRepaint() { clearok(parley_stdscr_for_redraw(), true) }

    /// Everything typed since the last call (never blocks).
    func readKeys() -> [Key] {
        var keys: [Key] = []
        while let raw = next() {
            switch raw {
            case .code(let code): if let key = decode(code: code) { keys.append(key) }
            case .char(let c): keys.append(contentsOf: decode(char: c))
            }
        }
        return keys
    }

    private enum Raw { case code(Int32), char(UInt32) }

    private func next() -> Raw? {
        var wch: wint_t = 0
        let result = get_wch(&wch)
        if result == parley_key_code_yes() { return .code(Int32(wch)) }
        if result == parley_err() { return nil }
        return .char(UInt32(wch))
    }

    private func decode(code: Int32) -> Key? {
        switch code {
        case KEY_UP: .up
        case KEY_DOWN: .down
        case KEY_LEFT: .left
        case KEY_RIGHT: .right
        case KEY_HOME: .home
        case KEY_END: .end
        case KEY_PPAGE: .pageUp
        case KEY_NPAGE: .pageDown
        case KEY_DC: .delete
        case KEY_BACKSPACE: .backspace
        case KEY_BTAB: .backTab
        case KEY_ENTER: .enter
        case KEY_RESIZE: .resize
        case KEY_MOUSE: mouse()
        case KEY_F0 + 1...KEY_F0 + 24: .function(Int(code - KEY_F0))
        default: nil
        }
    }

    private func mouse() -> Key? {
        var event = MEVENT()
        guard getmouse(&event) != parley_err() else { return nil }
        if event.bstate & parley_button4_pressed() != 0 { return .wheelUp }
        if event.bstate & parley_button5_pressed() != 0 { return .wheelDown }
        return nil
    }

    private func decode(char c: UInt32) -> [Key] {
        switch c {
        case 0x1B: return [escape()]
        case 0x0D: return [.enter]
        case 0x09: return [.tab]
        case 0x7F, 0x08: return [.backspace]
        case 0x01...0x1A: return [.ctrl(Character(Unicode.Scalar(c + 0x60)!))]
        case 0x00...0x1F: return []
        default: return Unicode.Scalar(c).map { [.char(Character($0))] } ?? []
        }
    }

    /// ESC alone, Alt+key, Home/End as VT220 sequences, or the start of a bracketed paste (ESC [ 2 0 0 ~ … ESC [ 2 0 1 ~).
    private func escape() -> Key {
        guard let following = next() else { return .escape }
        guard case .char(let c) = following else { return .escape }
        if c == 0x5B {  // '['
            var sequence = ""
            while let raw = next(), case .char(let d) = raw, let s = Unicode.Scalar(d) {
                sequence.unicodeScalars.append(s)
                if s == "~" || sequence.count > 6 { break }
            }
            if sequence == "200~" { return .paste(readPaste()) }
            // Home and End as tmux and the Linux console send them (VT220), which terminfo's xterm
            // entries do not name (they say ESC O H / ESC O F), so curses passes them on undecoded.
            if sequence == "1~" || sequence == "7~" { return .home }
            if sequence == "4~" || sequence == "8~" { return .end }
            return .meta("[")
        }
        if c == 0x0D { return .meta("\r") }
        return Unicode.Scalar(c).map { .meta(Character($0)) } ?? .escape
    }

    private func readPaste() -> String {
        var text = ""
        var idle = 0
        // The paste may span several reads; stop at the end marker (or after a long silence).
        while idle < 200 {
            guard let raw = next() else { idle += 1; usleep(1000); continue }
            idle = 0
            guard case .char(let c) = raw, let s = Unicode.Scalar(c) else { continue }
            text.unicodeScalars.append(s)
            if text.hasSuffix("\u{1B}[201~") { text.removeLast(6); break }
        }
        return text
    }
}
