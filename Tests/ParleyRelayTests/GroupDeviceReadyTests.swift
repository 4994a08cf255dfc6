import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// A newly linked device joins its account's groups at once (PROTOCOL.md §17.8): it tells the account's other
/// devices it is ready (a device-ready content), the relay wakes their push connections, and one of them adds
/// it — with nobody draining the old devices' mailboxes by hand. On a parley-relay process on loopback. The
/// waits poll the new device only, and their deadlines only bound a hung test.
@Suite("End to end: a linked device joins its groups at once")
struct GroupDeviceReadyTests {
    func texts(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state != .failed && $0.direction != .system }.map(\.text)
    }

    func failures(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state == .failed }.map(\.text)
    }

    /// Receives on `device` until it is a member of `id` (the Welcome of the Add its account's other
    /// device committed has arrived).
    func joins(_ device: TestDevice, _ id: GroupId) async throws {
        let address = await device.deviceAddress
        try await eventually("\(address) joins the group", timeout: .seconds(120)) {
            try await device.engine.receivePending()
            return try device.store.group(id)?.active == true
        }
    }

    @Test("while two other devices of the account listen for push, a device linked to it joins the group once, without their mailboxes being drained by hand, and reads the next message")
    func linkedDeviceJoinsWhileOthersListen() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, carol, bobs) = try await GroupDevicesEndToEndTests.people(on: relay, in: directory, bobDevices: 1)
            let laptop = bobs[0]
            let b = await bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "Trip", members: [b, c]).id
            for device in [bob, laptop, carol] { try await device.engine.receivePending() }
            _ = try await alice.engine.send(text: "before the tablet", toGroup: id)

            // Bob's phone and laptop stay connected, as the daemon or the chat window would.
            try await bob.connect()
            try await laptop.connect()
            let (tablet, _) = try await TestDevice.link(to: bob, on: relay, in: directory, label: "bob-tablet")
            let tabletAddress = await tablet.deviceAddress
            try await joins(tablet, id)
            #expect(try tablet.store.group(id)?.members.contains(tabletAddress) == true)

            _ = try await alice.engine.send(text: "hello tablet", toGroup: id)
            try await eventually("the tablet reads the next message and the group's name", timeout: .seconds(120)) {
                try await tablet.engine.receivePending()
                return try texts(tablet, id).contains("hello tablet") && tablet.store.group(id)?.name == "Trip"
            }
            #expect(try texts(tablet, id) == ["hello tablet"], "the new device reads what follows, never what came before")

            // The two listening devices raced (or one was first): the tablet has one leaf everywhere.
            for device in [alice, carol] { try await device.engine.receivePending() }
            let epoch = try #require(try alice.store.group(id)).epoch
            for device in [bob, laptop] {
                try await eventually("Bob's other devices reach the group's epoch", timeout: .seconds(120)) {
                    try device.store.group(id)?.epoch == epoch
                }
            }
            for device in [alice, bob, laptop, carol, tablet] {
                let record = try #require(try device.store.group(id))
                #expect(record.epoch == epoch)
                #expect(record.members.filter { $0 == tabletAddress }.count == 1)
                #expect(try failures(device, id).isEmpty)
            }
            bob.stopConnection()
            laptop.stopConnection()
        }
    }

    @Test("a device-ready content ends the wait an earlier claim set: the listening device claims the new device at once")
    func readyEndsTheClaimWait() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, carol, _) = try await GroupDevicesEndToEndTests.people(on: relay, in: directory)
            let b = await bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "g", members: [b, c]).id
            try await bob.engine.receivePending()
            try await bob.connect()

            // Linked by hand, so that Bob's phone looks for the new device between the link and the new
            // device's KeyPackages: it finds none and waits (PROTOCOL.md §17.8) before it claims again.
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let pending = try await PendingLink.begin(relay: client, relayName: relay.name)
            async let answer = bob.engine.linkDevice(try LinkCode(text: pending.code.text), name: "bob-tablet")
            let payload = try await pending.waitForPayload(timeout: .seconds(60), every: .milliseconds(50))
            _ = try await answer
            #expect(try await bob.engine.addOwnDevicesToGroups().isEmpty, "no KeyPackage of the tablet yet")

            let home = directory.sub("home-bob-tablet")
            let (engine, _) = try await Engine.completeLink(payload, deviceKey: pending.deviceKey, store: try TestDevice.newStore(home: home),
                                                            relay: client)
            let tablet = TestDevice(engine: engine, home: home)
            try await joins(tablet, id)
            #expect(try failures(tablet, id).isEmpty)
            bob.stopConnection()
        }
    }
}
