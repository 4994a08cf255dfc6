/// The syntax of an account address `name@host[:port]`: a lower-case name of 1–64 letters, digits, `.`,
/// `_`, `-`, and a relay that is a host name, an IPv4 address or a bracketed IPv6 address, optionally with
/// a port from 1 to 65535. The one definition: `AccountAddress` parses with it, and a
/// sender certificate naming anything else is refused when decoded, so an address a peer chose never
/// carries controls or spaces.
public enum AccountAddressSyntax {
    /// Why a text is not an account address (it never repeats the text).
    public struct Invalid: Error, Equatable, Sendable {
        public let reason: String
    }

    /// The name and the relay (lower-cased) of `text`.
    public static func parse(_ text: String) throws(Invalid) -> (name: String, relay: String) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw Invalid(reason: "expected NAME@HOST[:PORT]") }
        let name = String(parts[0]), relay = String(parts[1])
        guard (1...64).contains(name.unicodeScalars.count),
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }) else {
            throw Invalid(reason: "the name must be 1–64 characters of a–z, 0–9, '.', '_' or '-'")
        }
        guard relay.utf8.count <= 253, let (_, port) = split(relay) else {
            throw Invalid(reason: "the relay must be a host name, an IPv4 address or a bracketed IPv6 address, optionally with :PORT")
        }
        if let port {
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), (1...65535).contains(number) else {
                throw Invalid(reason: "the port must be a number from 1 to 65535")
            }
        }
        return (name, relay.lowercased())
    }

    /// Whether `text` is an account address exactly as it is written everywhere (`parse` changes nothing).
    public static func isCanonical(_ text: String) -> Bool {
        guard let (name, relay) = try? parse(text) else { return false }
        return "\(name)@\(relay)" == text
    }

    /// `host[:port]` or `[ipv6][:port]` split into its parts, or nil when it is neither: a host is letters,
    /// digits, '.' and '-'; a bracketed address is hex digits, ':' and '.'; at most one ':' outside brackets.
    private static func split(_ relay: String) -> (host: Substring, port: Substring?)? {
        func only(_ text: Substring, _ allowed: (Unicode.Scalar) -> Bool) -> Bool { !text.isEmpty && text.unicodeScalars.allSatisfy(allowed) }
        let rest: Substring, host: Substring
        if relay.hasPrefix("[") {
            guard let end = relay.firstIndex(of: "]") else { return nil }
            host = relay[relay.index(after: relay.startIndex)..<end]
            guard only(host, { $0.properties.isASCIIHexDigit || $0 == ":" || $0 == "." }) else { return nil }
            rest = relay[relay.index(after: end)...]
        } else {
            let colon = relay.firstIndex(of: ":") ?? relay.endIndex
            host = relay[..<colon]
            guard only(host, { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" })
            else { return nil }
            rest = relay[colon...]
        }
        if rest.isEmpty { return (host, nil) }
        guard rest.first == ":" else { return nil }
        return (host, rest.dropFirst())
    }
}
