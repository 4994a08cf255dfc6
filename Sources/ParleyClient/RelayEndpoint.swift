import ParleyProtocol
import ParleyRelayAPI

/// Where a relay lives and how to talk to it. Plain http/ws is allowed only to loopback hosts unless the
/// user said `--insecure`; everything else is https/wss.
public struct RelayEndpoint: Sendable, Equatable {
    public let baseURL: String
    public let pushURL: String
    public let host: String
    /// PEM file with extra trust roots (a private CA for a self-hosted relay).
    public let caFile: String?
    /// Whether the user allowed plain http/ws to hosts outside loopback (`--insecure`); other relays this
    /// device reaches (its contacts' relays) are held to the same choice.
    public let allowsInsecure: Bool

    /// `relay` is the `HOST[:PORT]` of an account address. `tls` nil means: TLS when a CA file is given (a CA
    /// only matters to TLS, so a loopback relay with one serves TLS), else plain on loopback, TLS elsewhere.
    public init(relay: String, tls: Bool? = nil, insecure: Bool = false, caFile: String? = nil) throws(ClientError) {
        let probe = try? AccountAddress("probe@" + relay)
        let host = probe?.host ?? relay
        let useTLS = tls ?? (caFile != nil || !AccountAddress.isLoopback(host: host))
        if !useTLS && !AccountAddress.isLoopback(host: host) && !insecure { throw .insecureTransport(host: host) }
        baseURL = (useTLS ? "https://" : "http://") + relay
        pushURL = (useTLS ? "wss://" : "ws://") + relay + "/v1/push"
        self.host = host
        self.caFile = caFile
        allowsInsecure = insecure
    }

    /// How this device reaches `relay`, a contact's relay, from its own relay at `home`: over TLS when home
    /// is (or when `relay` is not loopback), plain only where it would be allowed to home itself — on
    /// loopback, or with `--insecure` — and with home's CA file. The one place this is decided: account
    /// lookups, prekey bundles and sends to other relays all go this way.
    public init(peer relay: String, home: RelayEndpoint) throws(ClientError) {
        try self.init(relay: relay, tls: home.baseURL.hasPrefix("https") ? true : nil, insecure: home.allowsInsecure, caFile: home.caFile)
    }
}
