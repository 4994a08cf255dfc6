/// An account address `name@host[:port]` (lower-case name of 1–64 letters, digits, `.`, `_`, `-`).
public struct AccountAddress: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// `host` or `host:port`, as the relay names itself.
    public let relay: String

    public init(_ text: String) throws(AddressError) {
        do { (name, relay) = try AccountAddressSyntax.parse(text) } catch { throw .malformed(text, error.reason) }
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

    /// Why, without the text that failed (which may be anything a peer or a damaged file wrote).
    public var reason: String {
        switch self {
        case .malformed(_, let why): why
        }
    }
}
