/// An account address `name@host[:port]` (lower-case name of 1–64 letters, digits, `.`, `_`, `-`).
public struct AccountAddress: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// `host` or `host:port`, as the relay names itself.
    public let relay: String

    public init(_ text: String) throws(AddressError) {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformed(text, "expected NAME@HOST[:PORT]") }
        let name = String(parts[0]), relay = String(parts[1])
        guard (1...64).contains(name.count),
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }) else {
            throw .malformed(text, "the name must be 1–64 characters of a–z, 0–9, '.', '_' or '-'")
        }
        guard relay.count <= 253, let (_, port) = Self.split(relay) else {
            throw .malformed(text, "the relay must be a host name, an IPv4 address or a bracketed IPv6 address, optionally with :PORT")
        }
        if let port {
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), (1...65535).contains(number) else {
                throw .malformed(text, "the port must be a number from 1 to 65535")
            }
        }
        self.name = name
        self.relay = relay.lowercased()
    }

    public var description: String { "\(name)@\(relay)" }

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

    /// The host part without the port.
    public var host: String {
        if relay.hasPrefix("["), let end = relay.firstIndex(of: "]") { return String(relay[relay.index(after: relay.startIndex)..<end]) }
        if let colon = relay.lastIndex(of: ":") { return String(relay[..<colon]) }
        return relay
    }

    public var port: Int? {
        guard let colon = relay.lastIndex(of: ":"), !relay.hasSuffix("]") else { return nil }
        return Int(relay[relay.index(after: colon)...])
    }

    /// True for 127.0.0.0/8, ::1 and localhost — the only hosts plain http/ws is allowed to without --insecure.
    public var isLoopback: Bool { AccountAddress.isLoopback(host: host) }

    public static func isLoopback(host: String) -> Bool {
        // 127.0.0.0/8 as an address literal only: "127.evil.example" is a name anyone can point anywhere.
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        let ipv4Loopback = parts.count == 4 && parts[0] == "127"
            && parts.allSatisfy { part in !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && UInt8(part) != nil }
        return host == "localhost" || host == "::1" || ipv4Loopback
    }
}

public enum AddressError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String, String)
    public var description: String {
        switch self {
        case .malformed(let text, let why): "'\(text)' is not an account address: \(why)"
        }
    }
}
