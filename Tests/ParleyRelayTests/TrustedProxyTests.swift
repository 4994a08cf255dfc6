import Foundation
import Testing

/// `--trusted-proxy`: behind HAProxy every request comes from the proxy's address, so the per-IP limits
/// count the client address the proxy appends to X-Forwarded-For, and only for a proxy named so.
/// The relays allow 0.5 requests a second per address (burst 1): a new address's first request passes,
/// and twenty in a row from one address meet a refusal unless they take 40 seconds.
@Suite struct TrustedProxyTests {
    static let arguments = ["--rate-limit-ip", "0.5"]

    /// `X-Forwarded-For` values of twenty clients, each behind the same address of its own choosing.
    static let clients = (1...20).map { "198.51.100.1, 203.0.113.\($0)" }

    @Test func aTrustedProxysClientsHaveBudgetsOfTheirOwn() async throws {
        let directory = try TemporaryDirectory("proxy")
        let relay = try await RelayProcess.start(in: directory, arguments: Self.arguments + ["--trusted-proxy", "127.0.0.1"])
        defer { relay.kill() }
        let raw = RawHTTP(relay)
        // Each is counted by the last entry (the proxy's), not by the first (which the client wrote).
        for client in Self.clients {
            #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", client)]).status == 200, "\(client)")
        }
        // Not an address: counted against the proxy's own address, like requests without the header.
        var statuses: [Int] = []
        for _ in 1...20 { statuses.append(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "alice@example.org")]).status) }
        #expect(statuses.contains(429))
    }

    @Test func fromAnyoneElseTheHeaderIsIgnored() async throws {
        let directory = try TemporaryDirectory("proxy")
        let relay = try await RelayProcess.start(in: directory, arguments: Self.arguments)
        defer { relay.kill() }
        let raw = RawHTTP(relay)
        var statuses: [Int] = []
        for client in Self.clients { statuses.append(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", client)]).status) }
        #expect(statuses.contains(429), "one budget for all: \(statuses)")
    }
}
