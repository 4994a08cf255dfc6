import CNcurses
import ParleyProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Terminal column widths of grapheme clusters, and word wrapping by width.
///
/// A cluster's width is that of its first scalar (`wcwidth`), since combining marks and variation
/// selectors add none, except for what terminals draw as one emoji: a regional-indicator pair (a flag),
/// a zero-width-joiner sequence, or a text character turned emoji by U+FE0F — two columns each.
public enum DisplayWidth {
    /// `wcwidth` answers per the LC_CTYPE locale; a UTF-8 one is needed for anything beyond ASCII.
    nonisolated(unsafe) private static var localeReady = false

    public static func prepareLocale() {
        guard !localeReady else { return }
        localeReady = true
        if setlocale(LC_ALL, "") == nil || !String(cString: nl_langinfo(nl_item(CODESET))).uppercased().contains("UTF") {
            _ = setlocale(LC_CTYPE, "C.UTF-8")
        }
    }

    public static func width(_ cluster: Character) -> Int {
        let scalars = cluster.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if first.value < 0x7F { return first.value < 0x20 ? 0 : 1 }
        prepareLocale()
        if scalars.count > 1 {
            if isRegionalIndicator(first) { return 2 }
            if scalars.contains(where: { $0.value == 0x200D }), first.properties.isEmoji { return 2 }
            if scalars.contains(where: { $0.value == 0xFE0F }), first.properties.isEmoji { return 2 }
        }
        if first.properties.isEmojiPresentation { return 2 }
        let w = Int(parley_wcwidth(first.value))
        if w < 0 { return first.properties.generalCategory == .control ? 0 : 1 }
        // A lone combining mark still occupies a column when it starts a cluster.
        return w == 0 && scalars.count == 1 && first.properties.generalCategory != .format ? 1 : w
    }

    public static func width(_ text: some StringProtocol) -> Int {
        var total = 0
        for cluster in text { total += width(cluster) }
        return total
    }

    static func isRegionalIndicator(_ scalar: Unicode.Scalar) -> Bool { (0x1F1E6...0x1F1FF).contains(scalar.value) }

    /// What to hand curses for a cluster so that its idea of the width matches ours: curses stores one
    /// spacing character plus zero-width ones in a cell, so an emoji ZWJ sequence is drawn as its first
    /// emoji (same width, the layout stays exact) and controls and bidirectional overrides become U+FFFD.
    public static func drawable(_ cluster: Character) -> [Unicode.Scalar] {
        let scalars = Array(cluster.unicodeScalars)
        guard let first = scalars.first else { return [] }
        // Controls and bidirectional overrides never reach curses (the one rule for peer text: PeerText).
        if first.properties.generalCategory == .control || scalars.contains(where: PeerText.isDangerous) { return ["\u{FFFD}"] }
        if scalars.contains(where: { $0.value == 0x200D }) { return scalars.contains(where: { $0.value == 0xFE0F }) ? [first, "\u{FE0F}"] : [first] }
        return Array(scalars.prefix(5))
    }

    /// Cuts `text` to at most `columns` columns, ending in "…" when anything was cut.
    public static func truncate(_ text: String, to columns: Int) -> String {
        guard columns > 0 else { return "" }
        if width(text) <= columns { return text }
        var out = "", used = 0
        for cluster in text {
            let w = width(cluster)
            if used + w > columns - 1 { break }
            out.append(cluster)
            used += w
        }
        return out + "…"
    }

    /// Splits `text` into lines of at most `columns` columns, breaking after spaces where it can and
    /// inside words that are longer than a line. Newlines in the text start new lines.
    public static func wrap(_ text: String, columns: Int) -> [String] {
        guard columns > 0 else { return [text] }
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = "", used = 0
            var lastBreak: (index: String.Index, used: Int)?
            for cluster in paragraph {
                let w = width(cluster)
                if used + w > columns {
                    if let brk = lastBreak, brk.index > line.startIndex {
                        let rest = String(line[brk.index...])
                        lines.append(String(line[..<brk.index]))
                        line = rest
                        used = width(rest)
                    } else {
                        lines.append(line)
                        line = ""
                        used = 0
                    }
                    lastBreak = nil
                    if cluster == " " && line.isEmpty { continue }
                }
                line.append(cluster)
                used += w
                if cluster == " " { lastBreak = (line.endIndex, used) }
            }
            lines.append(line)
        }
        return lines
    }
}
