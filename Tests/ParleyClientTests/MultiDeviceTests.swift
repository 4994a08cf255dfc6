import Foundation
@testable import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport
import Testing

/// Fan-out against an in-process relay: a message reaches every device of its recipient and the sender's
/// own other devices, each learnt from the relay's refusal of an out-of-date device list.
@Suite("Multi-device fan-out (in process)")
struct MultiDeviceTests {
    @Test("a message to an account with two devices reaches both; the sender learns the new device from the relay's refusal")
    func reachesEveryDeviceOfTheRecipient() async throws {
        let pair = try await Pair.make()
        try await pair.alice.engine.send(text: "before", to: pair.bobAddress)
        let bob2 = try await pair.bob.addDevice(2, in: pair.directory)

        let sent = try await pair.alice.engine.send(text: "to both", to: pair.bobAddress)
        #expect(sent.state == .sent)
        let list = try #require(try pair.alice.store.contact(pair.bobAddress)?.account.deviceList)
        #expect(list.devices.map(\.deviceId) == [1, 2], "Alice's copy of Bob's device list was refreshed")

        try await pair.bob.engine.receivePending()
        try await bob2.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["before", "to both"])
        #expect(try bob2.incomingTexts(from: pair.aliceAddress) == ["to both"])
    }

    @Test("what one device sends reaches the account's other device as its own sent message, and the contact")
    func ownDevicesGetACopy() async throws {
        let pair = try await Pair.make()
        let alice2 = try await pair.alice.addDevice(2, in: pair.directory)
        try await alice2.engine.addContact(pair.bobAddress)
        // (Linking adopts the new list on the linking device; this fixture publishes it from outside.)
        try await pair.alice.engine.refreshOwnDeviceList()

        try await pair.alice.engine.send(text: "from the first device", to: pair.bobAddress)
        try await alice2.engine.receivePending()
        let synced = try alice2.history(with: pair.bobAddress)
        #expect(synced.map(\.text) == ["from the first device"])
        #expect(synced.map(\.direction) == [.outgoing])
        #expect(synced.map(\.state) == [.sent])

        // And the other way: the second device writes, the first files it as its own.
        try await alice2.engine.send(text: "from the second device", to: pair.bobAddress)
        try await pair.alice.engine.receivePending()
        #expect(try pair.alice.sent(to: pair.bobAddress).map(\.text) == ["from the first device", "from the second device"])

        try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["from the first device", "from the second device"])
    }
}
