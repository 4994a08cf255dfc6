/// Text a peer controls (addresses, conversation names, message texts, file names, failure reasons),
/// made harmless for each place it is shown. One set of dangerous scalars, used by every output path:
///
/// - C0 controls and DEL (ESC starts terminal sequences: OSC 0 retitles the window, OSC 52 writes the
///   clipboard, `ESC[2K` with a carriage return redraws a line);
/// - C1 controls U+0080–U+009F (U+009B is a one-byte CSI, U+009D a one-byte OSC on some terminals);
/// - bidirectional embeddings, overrides and isolates U+202A–U+202E, U+2066–U+2069 (they reorder what is
///   shown, so "txt.exe" can read as "exe.txt").
public enum PeerText {
    /// Whether `scalar` must never reach a terminal, a file name or a JSON line as itself.
    public static func isDangerous(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// For a terminal: C0 controls as ^X (DEL as ^?), C1 controls and bidirectional controls as U+FFFD,
    /// a tab kept. A line end in `multiline` text starts an indented line, so no text can print a line
    /// that looks like another message; elsewhere it is shown as ^J.
    public static func forTerminal(_ text: String, multiline: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: isDangerous) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A where multiline: out.append(contentsOf: "\n    ".unicodeScalars)
            case 0x09: out.append(scalar)
            case 0x00...0x1F: out.append(contentsOf: "^\(Character(Unicode.Scalar(UInt8(scalar.value) + 0x40)))".unicodeScalars)
            case 0x7F: out.append(contentsOf: "^?".unicodeScalars)
            case _ where isDangerous(scalar): out.append("\u{FFFD}")
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// For the inside of a JSON string: the dangerous scalars that JSON allows raw (DEL, C1, bidirectional
    /// controls) and U+2028/U+2029 as `\uXXXX`, so the value a program decodes is exactly the peer's text
    /// while the line itself, printed, stays inert. Applied to a whole serialised JSON text it changes only
    /// string contents, since JSON's own syntax is ASCII.
    public static func escapingForJSON(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: needsJSONEscape) else { return json }
        var out = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            if needsJSONEscape(scalar) {
                let hex = String(scalar.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Scalars above the C0 range that a JSON encoder leaves raw but that must not be printed as themselves.
    public static func needsJSONEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value >= 0x7F && (isDangerous(scalar) || scalar.value == 0x2028 || scalar.value == 0x2029)
    }

    /// For a file name on disk: every dangerous scalar becomes "_".
    public static func forFileName(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.map { isDangerous($0) ? "_" : $0 }))
    }

    /// At most this many characters in a name a user gives a contact.
    public static let nameLimit = 40

    /// A name a user gives a contact, made safe to store and show: dangerous scalars and line separators
    /// dropped, runs of whitespace made one space, the ends trimmed, at most `nameLimit` characters.
    /// Applied when the name is given and again wherever it is read, so a store written by anything else
    /// cannot print a control through it either.
    public static func forName(_ name: String) -> String {
        var out = String.UnicodeScalarView()
        var space = false
        for scalar in name.unicodeScalars where !isDangerous(scalar) || scalar.value == 0x09 || scalar.value == 0x0A {
            if scalar.properties.isWhitespace || scalar.value == 0x2028 || scalar.value == 0x2029 {
                space = !out.isEmpty
                continue
            }
            if space { out.append(" ") }
            space = false
            out.append(scalar)
        }
        return String(String(out).prefix(nameLimit))
    }
}
