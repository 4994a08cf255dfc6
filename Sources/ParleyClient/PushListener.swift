import NIOSSL
import ParleyCrypto
import ParleyRelayAPI
#if canImport(Glibc)
import Glibc
#endif

/// Holds the push WebSocket open and turns every `wake` into a call of `onWake`; reconnects with
/// exponential backoff and jitter, and calls `onWake` after every (re)connect too, since mail may have
/// arrived while it was down. The channel carries nothing but the wake token.
public struct PushListener: Sendable {
    public enum State: Sendable, Equatable { case connecting, connected, disconnected(String) }

    let endpoint: RelayEndpoint
    let token: @Sendable () async throws -> String
    let onWake: @Sendable () async -> Void
    let onState: @Sendable (State) async -> Void

    public init(endpoint: RelayEndpoint, token: @escaping @Sendable () async throws -> String,
                onWake: @escaping @Sendable () async -> Void, onState: @escaping @Sendable (State) async -> Void = { _ in }) {
        self.endpoint = endpoint
        self.token = token
        self.onWake = onWake
        self.onState = onState
    }

    /// Runs until the task is cancelled.
    public func run() async {
        var delay = 0.25
        while !Task.isCancelled {
            await onState(.connecting)
            let connected = OnceFlag()
            do {
                let authorization = "Bearer " + (try await token())
                var tls: TLSConfiguration?
                if let caFile = endpoint.caFile {
                    var t = TLSConfiguration.makeClientConfiguration()
                    t.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caFile))]
                    tls = t
                }
                let onWake = self.onWake, onState = self.onState
                try await PushSocket.run(url: endpoint.pushURL, authorization: authorization, tls: tls) { text in
                    if connected.setIfUnset() { await onState(.connected) }
                    if text == RelayAPI.wakeToken { await onWake() }
                }
                await onState(.disconnected("closed by the relay"))
            } catch {
                await onState(.disconnected(String(describing: error)))
            }
            if connected.isSet { delay = 0.25 }
            // Exponential backoff with ±25% jitter, capped at 30 s, so a fleet of clients does not
            // reconnect in lockstep after a relay restart.
            let jitter = Double.random(in: 0.75...1.25)
            try? await Task.sleep(for: .milliseconds(Int(delay * jitter * 1000)))
            delay = min(delay * 2, 30)
        }
    }
}
