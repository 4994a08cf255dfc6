import ParleyProtocol

/// Links in message text: found to be highlighted, and the only ones the opener is given. A link starts
/// with `http://`, `https://` or `mailto:` (any case) at the start of the text or after a character that
/// is not a letter, digit or one of `+-.` (so `xhttps://` and `svn+https://` are not links), and runs to
/// the first space, quote, angle bracket or character that must never reach a terminal
/// (`PeerText.isDangerous`: a control or a direction override ends a link, so the link shown and opened
/// can never carry one). Punctuation that ends a sentence is not part of it, and neither is a closing
/// bracket that the link itself did not open (`(see https://example.com/a_(b))` keeps `…/a_(b)`).
public enum Links {
    public struct Link: Equatable, Sendable {
        /// Character offsets in the text the link was found in.
        public let range: Range<Int>
        /// The link exactly as written: what is shown, and what the opener receives.
        public let url: String
    }

    /// The schemes a link may have (and the only ones ever opened).
    public static let schemes = ["https://", "http://", "mailto:"]

    public static func find(in text: String) -> [Link] {
        let characters = Array(text)
        var links: [Link] = []
        var index = 0
        while index < characters.count {
            guard startsLink(characters, at: index), let scheme = scheme(characters, at: index) else { index += 1; continue }
            var end = index + scheme.count
            while end < characters.count, belongs(characters[end]) { end += 1 }
            end = trimmed(characters, from: index, to: end)
            let url = String(characters[index..<end])
            if hasTarget(url, after: scheme) {
                links.append(Link(range: index..<end, url: url))
                index = end
            } else {
                index += scheme.count
            }
        }
        return links
    }

    /// Whether `url` is one the opener may receive: one whole link of an allowed scheme, nothing around it.
    public static func isOpenable(_ url: String) -> Bool {
        find(in: url) == [Link(range: 0..<url.count, url: url)]
    }

    private static func startsLink(_ characters: [Character], at index: Int) -> Bool {
        guard index > 0 else { return true }
        let before = characters[index - 1]
        return !(before.isLetter || before.isNumber || before == "+" || before == "-" || before == "." || before == "_")
    }

    private static func scheme(_ characters: [Character], at index: Int) -> String? {
        schemes.first { scheme in
            index + scheme.count <= characters.count
                && String(characters[index..<index + scheme.count]).lowercased() == scheme
        }
    }

    /// Characters a link runs over: anything printable but spaces, quotes, angle brackets and backticks.
    private static func belongs(_ character: Character) -> Bool {
        if character.isWhitespace || "\"'<>`".contains(character) { return false }
        return !character.unicodeScalars.contains { PeerText.isDangerous($0) || $0.properties.isWhitespace
            || $0.value == 0x200B || $0.value == 0x2028 || $0.value == 0x2029 || $0.value == 0xFEFF }
    }

    /// Drops trailing sentence punctuation and closing brackets the link did not open.
    private static func trimmed(_ characters: [Character], from start: Int, to end: Int) -> Int {
        var end = end
        let pairs: [Character: Character] = [")": "(", "]": "[", "}": "{"]
        while end > start {
            let last = characters[end - 1]
            if ".,:;!?*".contains(last) {
                end -= 1
            } else if let open = pairs[last] {
                let body = characters[start..<end]
                if body.filter({ $0 == open }).count < body.filter({ $0 == last }).count { end -= 1 } else { break }
            } else {
                break
            }
        }
        return end
    }

    /// A link needs something after its scheme: a host that starts with a letter or digit for http(s), an
    /// address with an '@' that is neither first nor last for mailto.
    private static func hasTarget(_ url: String, after scheme: String) -> Bool {
        let rest = url.dropFirst(scheme.count)
        if scheme == "mailto:" {
            guard let at = rest.firstIndex(of: "@") else { return false }
            return at != rest.startIndex && rest.index(after: at) != rest.endIndex
        }
        guard let first = rest.first else { return false }
        return first.isLetter || first.isNumber || first == "["
    }
}
