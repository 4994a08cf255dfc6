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
        guard !relay.isEmpty, relay.count <= 253,
              relay.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || ".-:[]".unicodeScalars.contains($0) }) else {
            throw .malformed(text, "the relay must be a host name or address, optionally with :PORT")
        }
        if let colon = relay.lastIndex(of: ":"), !relay.hasSuffix("]") {
            guard let port = Int(relay[relay.index(after: colon)...]), (1...65535).contains(port) else {
                throw .malformed(text, "the port must be a number from 1 to 65535")
            }
        }
        self.name = name
        self.relay = relay.lowercased()
    }

    public var description: String { "\(name)@\(relay)" }

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
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
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
