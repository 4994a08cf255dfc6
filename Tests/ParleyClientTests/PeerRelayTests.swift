import Foundation
@testable import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport
import Testing

/// Contacts on other relays: which endpoint, and which transport, this device uses to reach them.
@Suite("Peer relays")
struct PeerRelayTests {
    @Test("a contact's relay is reached over TLS unless plain would be allowed to it as a home relay")
    func peerEndpointDecision() throws {
        let loopbackHome = try RelayEndpoint(relay: "127.0.0.1:7001")
        #expect(try RelayEndpoint(peer: "relay.example:443", home: loopbackHome).baseURL == "https://relay.example:443")
        #expect(try RelayEndpoint(peer: "127.0.0.2:7002", home: loopbackHome).baseURL == "http://127.0.0.2:7002")
        let tlsHome = try RelayEndpoint(relay: "home.example", caFile: "/ca.pem")
        let fromTLS = try RelayEndpoint(peer: "127.0.0.2:7002", home: tlsHome)
        #expect(fromTLS.baseURL == "https://127.0.0.2:7002", "a TLS home relay's device never drops to plain")
        #expect(fromTLS.caFile == "/ca.pem")
        // --insecure allows plain http where the user asked for it, not to every relay: others still get TLS.
        let insecureHome = try RelayEndpoint(relay: "10.0.0.1:80", tls: false, insecure: true)
        #expect(try RelayEndpoint(peer: "relay.example:443", home: insecureHome).baseURL == "https://relay.example:443")
    }

    @Test("from a loopback home relay, a contact on a TLS relay: its account, its prekey bundles and the message all go over https")
    func contactOnTLSRelayFromLoopbackHome() async throws {
        let network = InProcessNetwork()
        let home = try network.addRelay("127.0.0.1:7001")
        let remote = try network.addRelay("relay.example:443", tls: true)
        let directory = try TemporaryDirectory("peer-relay")
        let alice = try await ClientDevice.create("alice", on: home, relayName: home.name, in: directory)
        let bob = try await ClientDevice.create("bob", on: remote, relayName: remote.name, in: directory)
        let bobAddress = await bob.address

        try await alice.engine.addContact(bobAddress)
        let sent = try await alice.engine.send(text: "across relays", to: bobAddress)
        #expect(sent.state == .sent)
        #expect(remote.tap.count("bundle") == 1, "Bob's bundle came from his relay")
        let token = try await bob.engine.sessionToken()
        #expect(try await remote.calls.fetch(limit: 10, after: nil, token: token).messages.count == 1)

        let toRemote = network.requestedURLs.filter { $0.hasSuffix("relay.example:443") }
        #expect(!toRemote.isEmpty)
        #expect(toRemote.allSatisfy { $0 == "https://relay.example:443" }, "asked for: \(toRemote)")
    }
}
