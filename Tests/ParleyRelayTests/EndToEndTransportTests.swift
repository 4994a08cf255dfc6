import Foundation
import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Plain http only to loopback unless asked; https and wss with a private CA.
@Suite("End to end: transport security")
struct EndToEndTransportTests {
    @Test("plain http to a host that is not loopback is refused without --insecure")
    func insecureTransportRefused() async throws {
        for relay in ["relay.example.org:8080", "192.0.2.10:8080", "[2001:db8::1]:8443", "10.0.0.1"] {
            let host = try AccountAddress("probe@" + relay).host
            #expect(throws: ClientError.insecureTransport(host: host), "\(relay)") { try RelayEndpoint(relay: relay, tls: false) }
            // Asked for explicitly, it is allowed; by default such hosts get TLS.
            #expect(try RelayEndpoint(relay: relay, tls: false, insecure: true).baseURL == "http://" + relay)
            #expect(try RelayEndpoint(relay: relay).baseURL == "https://" + relay)
            #expect(try RelayEndpoint(relay: relay).pushURL == "wss://" + relay + "/v1/push")
        }
        for loopback in ["127.0.0.1:8443", "127.1.2.3:80", "localhost:8443", "[::1]:8443"] {
            #expect(try RelayEndpoint(relay: loopback, tls: false).baseURL == "http://" + loopback)
            #expect(try RelayEndpoint(relay: loopback).pushURL == "ws://" + loopback + "/v1/push")
        }

        // The CLI refuses before touching the network, the key file or the home directory.
        let parley = try Binaries.path("parley")
        let directory = try TemporaryDirectory()
        let home = directory.sub("home"), keyFile = directory.sub("key")
        let result = try await run(parley, ["init", "bob@192.0.2.10:8080", "--no-tls", "--home", home, "--key-file", keyFile], in: directory)
        #expect(result.status == 1, "\(result.summary)")
        #expect(result.stderr.contains("refusing plain http to 192.0.2.10"), "\(result.summary)")
        #expect(result.stderr.contains("--insecure"))
        #expect(!FileManager.default.fileExists(atPath: home + "/parley.db"))
        #expect(!FileManager.default.fileExists(atPath: keyFile))
    }

    @Test("over TLS with a private CA: accounts are created and messages exchanged over https and wss")
    func tlsWithPrivateCA() async throws {
        let directory = try TemporaryDirectory("tls")
        let certificates = try await makeCertificates(in: directory)
        // Named localhost:PORT (it listens on 127.0.0.1, which the certificate also names); the same relay by
        // its IP address is tried at the end.
        let relay = try await RelayProcess.start(in: directory, arguments: ["--tls-cert", certificates.serverCertificate,
                                                                           "--tls-key", certificates.serverKey],
                                                 publicHost: "localhost")
        defer { relay.kill() }
        do {
            #expect(relay.baseURL.hasPrefix("https://"))
            let alice = try await TestDevice.create("alice", on: relay, in: directory, caFile: certificates.caFile)
            let bob = try await TestDevice.create("bob", on: relay, in: directory, caFile: certificates.caFile)
            let aliceEndpoint = alice.engine.relay.endpoint, bobEndpoint = bob.engine.relay.endpoint
            #expect(aliceEndpoint.baseURL == "https://" + relay.name)
            #expect(bobEndpoint.pushURL == "wss://" + relay.name + "/v1/push")
            let aliceAddress = await alice.address, bobAddress = await bob.address
            try await alice.engine.addContact(bobAddress)

            // Bob listens on wss; Alice's message reaches him through a push wake-up.
            try await bob.connect()
            defer { bob.stopConnection() }
            let sent = try await alice.engine.send(text: "over TLS", to: bobAddress)
            #expect(sent.state == .sent)
            try await eventually("bob to receive the message over wss") { try bob.incomingTexts(from: aliceAddress) == ["over TLS"] }

            try await bob.engine.send(text: "and back over TLS", to: aliceAddress)
            try await alice.engine.receivePending()
            #expect(try alice.incomingTexts(from: bobAddress) == ["and back over TLS"])

            // https to the IP address works too (the certificate's IP entry is checked) ...
            let byAddress = try RelayEndpoint(relay: relay.listen, tls: true, caFile: certificates.caFile)
            #expect(try await RelayClient(endpoint: byAddress).health().name == relay.name)
            // ... and the certificate really is checked: without the CA the relay is not trusted, and plain
            // http to the TLS port gets nowhere either.
            #expect(try await Self.healthFails(RelayEndpoint(relay: relay.name, tls: true)))
            #expect(try await Self.healthFails(RelayEndpoint(relay: relay.name, tls: false)))

            // ... and so does the push channel over wss to the IP address: no TLS server name (SNI cannot
            // carry an IP), the certificate checked against its IP entry.
            let outcome = try await Self.firstPushOutcome(byAddress, token: try await alice.token())
            #expect(outcome == .connected)
            // Without the CA the push channel does not trust the relay either.
            let untrusted = try RelayEndpoint(relay: relay.listen, tls: true)
            #expect(try await Self.firstPushOutcome(untrusted, token: try await alice.token()) != .connected)
        }
    }

    @Test("a loopback relay serving TLS: `parley init --ca-file` speaks TLS to it; a plain request it drops says to pass --tls")
    func caFileImpliesTLS() async throws {
        let directory = try TemporaryDirectory("tls-ca")
        let certificates = try await makeCertificates(in: directory)
        let relay = try await RelayProcess.start(in: directory, arguments: ["--tls-cert", certificates.serverCertificate,
                                                                           "--tls-key", certificates.serverKey],
                                                 publicHost: "localhost")
        defer { relay.kill() }
        let parley = try Binaries.path("parley")
        let alice = ["--home", directory.sub("alice"), "--key-file", directory.sub("alice.key")]
        var result = try await run(parley, ["init", "alice@\(relay.name)", "--ca-file", certificates.caFile] + alice, in: directory)
        #expect(result.status == 0, "\(result.summary)")
        // Later commands reach it the same way (the options were saved).
        result = try await run(parley, ["devices"] + alice, in: directory)
        #expect(result.status == 0, "\(result.summary)")

        let bob = ["--home", directory.sub("bob"), "--key-file", directory.sub("bob.key")]
        result = try await run(parley, ["init", "bob@\(relay.name)"] + bob, in: directory)
        #expect(result.status == 3, "\(result.summary)")
        #expect(result.stderr.contains("the relay may serve TLS: pass --tls"), "\(result.summary)")
    }

    /// The first state after `connecting` that a push listener reaches.
    private static func firstPushOutcome(_ endpoint: RelayEndpoint, token: String) async throws -> PushListener.State {
        let outcome = Outcome()
        let listener = PushListener(endpoint: endpoint, token: { token }, onWake: {}, onState: { state in
            if state != .connecting { outcome.record(state) }
        })
        let task = Task { await listener.run() }
        defer { task.cancel() }
        try await eventually("the push listener to connect or fail") { outcome.value != nil }
        return outcome.value!
    }

    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var state: PushListener.State?
        var value: PushListener.State? { lock.withLock { state } }
        func record(_ new: PushListener.State) { lock.withLock { if state == nil { state = new } } }
    }

    private static func healthFails(_ endpoint: RelayEndpoint) async throws -> Bool {
        do {
            _ = try await RelayClient(endpoint: endpoint, timeout: .seconds(10)).health()
            return false
        } catch ClientError.network {
            return true
        }
    }

    struct Certificates: Sendable {
        let caFile: String
        let serverCertificate: String
        let serverKey: String
    }

    /// A throw-away CA and a server certificate for localhost and 127.0.0.1 it signed (P-256), made with openssl.
    func makeCertificates(in directory: TemporaryDirectory) async throws -> Certificates {
        let openssl = try opensslPath()
        let ca = directory.sub("ca.pem"), caKey = directory.sub("ca.key")
        let csr = directory.sub("server.csr"), cert = directory.sub("server.pem"), key = directory.sub("server.key")
        let extensions = directory.sub("server.ext")
        try """
            subjectAltName = DNS:localhost, IP:127.0.0.1
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            """.write(toFile: extensions, atomically: true, encoding: .utf8)
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", caKey, "-out", ca,
             "-days", "2", "-subj", "/CN=Parley end-to-end test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2",
             "-extfile", extensions],
        ]
        for step in steps {
            let result = try await run(openssl, step, in: directory)
            guard result.status == 0 else { throw FixtureError("openssl \(step.joined(separator: " ")) failed:\n\(result.summary)") }
        }
        return Certificates(caFile: ca, serverCertificate: cert, serverKey: key)
    }
}
