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

    /// `relay` is the `HOST[:PORT]` of an account address. `tls` nil means: plain on loopback, TLS elsewhere.
    public init(relay: String, tls: Bool? = nil, insecure: Bool = false, caFile: String? = nil) throws(ClientError) {
        let probe = try? AccountAddress("probe@" + relay)
        let host = probe?.host ?? relay
        let useTLS = tls ?? !AccountAddress.isLoopback(host: host)
        if !useTLS && !AccountAddress.isLoopback(host: host) && !insecure { throw .insecureTransport(host: host) }
        baseURL = (useTLS ? "https://" : "http://") + relay
        pushURL = (useTLS ? "wss://" : "ws://") + relay + "/v1/push"
        self.host = host
        self.caFile = caFile
        allowsInsecure = insecure
    }
}
