import Foundation
@testable import ParleyClient
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport

/// Alice and Bob, each the other's contact, on one in-process relay (plain, on loopback as `parley init`
/// would name it), with real store files in a temporary directory.
struct Pair {
    let network: InProcessNetwork
    let relay: InProcessRelay
    let directory: TemporaryDirectory
    let alice: ClientDevice
    let bob: ClientDevice
    let aliceAddress: AccountAddress
    let bobAddress: AccountAddress

    static let relayName = "127.0.0.1:7001"

    static func make(configure: (inout RelayConfiguration) -> Void = { _ in }) async throws -> Pair {
        let network = InProcessNetwork()
        let relay = try network.addRelay(relayName, configure: configure)
        let directory = try TemporaryDirectory("client")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: relayName, in: directory)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: relayName, in: directory)
        let aliceAddress = await alice.address, bobAddress = await bob.address
        try await alice.engine.addContact(bobAddress)
        try await bob.engine.addContact(aliceAddress)
        return Pair(network: network, relay: relay, directory: directory, alice: alice, bob: bob,
                    aliceAddress: aliceAddress, bobAddress: bobAddress)
    }

    /// What Bob's mailbox on the relay still holds (read with Bob's token, as his device would).
    func bobsMailbox() async throws -> Int {
        try await relay.calls.fetch(limit: 500, after: nil, token: try await bob.engine.sessionToken()).messages.count
    }
}
