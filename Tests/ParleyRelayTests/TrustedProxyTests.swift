import Foundation
import Testing

/// `--trusted-proxy`: behind HAProxy every request comes from the proxy's address, so the per-IP limits
/// count the client address the proxy appends to X-Forwarded-For, and only for a proxy named so.
@Suite struct TrustedProxyTests {
    /// One request a client may make at --rate-limit-ip 0.5 (burst 1) before its bucket is empty.
    static let arguments = ["--rate-limit-ip", "0.5"]

    @Test func aTrustedProxysClientsHaveBudgetsOfTheirOwn() async throws {
        let directory = try TemporaryDirectory("proxy")
        let relay = try await RelayProcess.start(in: directory, arguments: Self.arguments + ["--trusted-proxy", "127.0.0.1"])
        defer { relay.kill() }
        let raw = RawHTTP(relay)
        // What the client wrote itself comes first and is not believed; the proxy's entry comes last.
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]).status == 200)
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "198.51.100.2, 203.0.113.7")]).status == 429)
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "203.0.113.7, 198.51.100.1")]).status == 200,
                "another client behind the same proxy has a budget of its own")
        // Not an address: the request counts against the proxy's own address, whose budget is still full.
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "alice@example.org")]).status == 200)
        #expect(try await raw.request(.GET, "/v1/health").status == 429)
    }

    @Test func fromAnyoneElseTheHeaderIsIgnored() async throws {
        let directory = try TemporaryDirectory("proxy")
        let relay = try await RelayProcess.start(in: directory, arguments: Self.arguments)
        defer { relay.kill() }
        let raw = RawHTTP(relay)
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "203.0.113.7")]).status == 200)
        #expect(try await raw.request(.GET, "/v1/health", headers: [("X-Forwarded-For", "198.51.100.1")]).status == 429)
    }
}
