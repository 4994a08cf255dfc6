/// Draws a `QRCode` as terminal text: Unicode half blocks (two module rows per text row) or a pure-ASCII
/// fallback (two characters per module, one text row per module row). Every line of a rendering has the
/// same number of characters, and every rendering carries a quiet zone of `quietZone` light modules on
/// all four sides (the QR standard asks for 4; scanners need it to find the symbol).
///
/// ## Polarity: why there is a choice at all
/// A text cell has only two colours, the terminal's foreground ("ink", what a glyph paints) and its
/// background ("paper", what a space shows). A plain-text rendering can only choose which modules get
/// ink; which colour that turns out to be is up to the terminal's theme. A QR code must be dark modules on
/// a light quiet zone — many phone scanners do not try an inverted (light-on-dark) code — so:
///
/// - `darkOnLight: true` inks the **dark** modules and leaves light modules and the quiet zone as paper.
///   Right for a light-background terminal (dark text on light paper). On a dark-background terminal the
///   same text shows an inverted code.
/// - `darkOnLight: false` inks the **light** modules *and the quiet zone* (full blocks all round the
///   symbol) and leaves the dark modules as paper. Right for a dark-background terminal (light text on dark
///   paper): the code's light colour is then painted explicitly with glyphs instead of being whatever the
///   background happens to be, and the dark modules are the dark paper.
/// - `ansiColors: true` (half blocks only) removes the dependence on the theme altogether: every row is
///   wrapped in SGR 30;47 (black ink on white paper) and reset with SGR 0 at its end, so both the dark and
///   the light modules, quiet zone included, are painted explicitly and the code reads the same on dark and
///   light terminals. This is the safest choice wherever escape sequences are allowed (a plain stdout that
///   is a TTY); `darkOnLight` is then irrelevant. Inside curses, draw the `darkOnLight: true` lines with a
///   black-on-white colour pair instead, which amounts to the same thing.
///
/// The basic colours 30/47 are used rather than 256-colour or true-colour ones because every terminal
/// (including the Linux console) has them, and themes that remap them keep black dark and white light.
///
/// `▀ ▄ █` are East Asian "ambiguous width" characters: a terminal set to draw those double-width (some
/// CJK set-ups) stretches the code horizontally, which scanners tolerate; the ASCII fallback has no such
/// issue.
public enum QRRenderer {
    /// Half-block rendering: text row `r` covers module rows `2r` and `2r + 1` of the code with its quiet
    /// zone, using ' ', '▀' (upper module inked), '▄' (lower module inked) and '█' (both inked). Returns
    /// ceil((size + 2·quietZone) / 2) lines of size + 2·quietZone characters each (plus the escape
    /// sequences with `ansiColors`). That module count is always odd (`size` is), so the lower half of the
    /// last line lies below the quiet zone: it is left as paper (white with `ansiColors`).
    public static func halfBlocks(_ qr: QRCode, quietZone: Int = 4, darkOnLight: Bool = true,
                                  ansiColors: Bool = false) -> [String] {
        let quiet = max(0, quietZone)
        let span = qr.size + 2 * quiet
        // With explicit colours the ink is black, so it goes on the dark modules whatever `darkOnLight` says.
        let inkDark = ansiColors || darkOnLight
        func inked(_ x: Int, _ y: Int) -> Bool {
            guard y < span else { return false }  // padding half-row below the quiet zone
            return qr.isDark(x: x - quiet, y: y - quiet) == inkDark
        }
        var lines: [String] = []
        lines.reserveCapacity((span + 1) / 2)
        for row in stride(from: 0, to: span, by: 2) {
            var line = ansiColors ? "\u{1B}[30;47m" : ""
            line.unicodeScalars.reserveCapacity(span + 16)
            for x in 0..<span {
                switch (inked(x, row), inked(x, row + 1)) {
                case (true, true): line.unicodeScalars.append("\u{2588}")  // █
                case (true, false): line.unicodeScalars.append("\u{2580}")  // ▀
                case (false, true): line.unicodeScalars.append("\u{2584}")  // ▄
                case (false, false): line.unicodeScalars.append(" ")
                }
            }
            if ansiColors { line += "\u{1B}[0m" }
            lines.append(line)
        }
        return lines
    }

    /// Pure-ASCII fallback for terminals without Unicode block glyphs: one text row per module row, two
    /// characters per module ("##" inked, "  " paper) so that modules come out roughly square in a cell of
    /// about 1:2. Returns size + 2·quietZone lines of 2·(size + 2·quietZone) characters. `darkOnLight`
    /// chooses which modules get the ink, as for `halfBlocks` (with `false` the quiet zone is all '#').
    public static func ascii(_ qr: QRCode, quietZone: Int = 4, darkOnLight: Bool = true) -> [String] {
        let quiet = max(0, quietZone)
        let span = qr.size + 2 * quiet
        var lines: [String] = []
        lines.reserveCapacity(span)
        for y in 0..<span {
            var line = ""
            line.reserveCapacity(2 * span)
            for x in 0..<span {
                line += qr.isDark(x: x - quiet, y: y - quiet) == darkOnLight ? "##" : "  "
            }
            lines.append(line)
        }
        return lines
    }
}
