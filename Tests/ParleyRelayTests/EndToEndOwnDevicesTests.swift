import Foundation
import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Copies of sent messages to the sender's own other devices: sent to its own account with the device's
/// token, so the relay does not ask for the sending device itself.
@Suite("End to end: copies to the sender's own devices")
struct EndToEndOwnDevicesTests {
    @Test("each of Alice's two devices sees what the other sent to Bob, filed as outgoing in Bob's conversation")
    func sentCopies() async throws {
        try await withRelay { relay, directory in
            let alice1 = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice1.address, b = await bob.address
            let alice2 = try await alice1.addDevice(2, on: relay, in: directory)
            try await alice1.engine.refreshOwnDeviceList()
            for device in [alice1, alice2] { try await device.engine.addContact(b) }
            try await bob.engine.addContact(a)

            let first = try await alice1.engine.send(text: "from the laptop", to: b)
            #expect(first.state == .sent)
            let second = try await alice2.engine.send(text: "from the server", to: b)
            #expect(second.state == .sent)

            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: a) == ["from the laptop", "from the server"])
            try await alice2.engine.receivePending()
            try await alice1.engine.receivePending()
            for device in [alice1, alice2] {
                let outgoing = try device.sent(to: b)
                #expect(Set(outgoing.map(\.text)) == ["from the laptop", "from the server"])
                #expect(try device.history(with: b).allSatisfy { $0.direction == .outgoing })
            }
        }
    }

    @Test("another account's token is an authenticated send (PROTOCOL.md §13.1); an invalid token is refused and nothing is stored")
    func foreignToken() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let b = await bob.address
            let bobDevice = await bob.engine.account.device
            let raw = RawHTTP(relay)
            let body = SendRequest(messages: [OutgoingMessage(deviceId: bobDevice.deviceId, deviceKey: Base64Bytes(bobDevice.publicKey.bytes),
                                                              envelope: Base64Bytes([UInt8](repeating: 1, count: 200)))])
            let bad = try await raw.request(.POST, raw.messagesPath(b.description), json: body, token: String(repeating: "0", count: 64))
            #expect(bad.status == 401)
            #expect(try await raw.mailbox(token: try await bob.token()).isEmpty)
            let reply = try await raw.request(.POST, raw.messagesPath(b.description), json: body, token: try await alice.token())
            #expect(reply.status == 204)
            #expect(try await raw.mailbox(token: try await bob.token()).count == 1)
        }
    }
}
