import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Devices linked and revoked while a group is active (PROTOCOL.md §17.8), on a parley-relay process on
/// loopback: the account's own devices add its new device, which reads only what follows; a revoked device's
/// leaf leaves every group, and nobody sees an undecryptable message.
@Suite("End to end: devices in groups")
struct GroupDevicesEndToEndTests {
    func texts(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state != .failed && $0.direction != .system }.map(\.text)
    }

    func failures(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state == .failed }.map(\.text)
    }

    /// Alice, Bob and Carol, each the others' contact, with KeyPackages on the relay; `bobDevices` more
    /// devices of Bob's (ids 2…) made before any group.
    static func people(on relay: RelayProcess, in directory: TemporaryDirectory, bobDevices: Int = 0) async throws
        -> (alice: TestDevice, bob: TestDevice, carol: TestDevice, bobs: [TestDevice]) {
        let alice = try await TestDevice.create("alice", on: relay, in: directory)
        let bob = try await TestDevice.create("bob", on: relay, in: directory)
        let carol = try await TestDevice.create("carol", on: relay, in: directory)
        var bobs: [TestDevice] = []
        for n in 0..<bobDevices { bobs.append(try await bob.addDevice(UInt32(n + 2), on: relay, in: directory)) }
        try await bob.engine.refreshOwnDeviceList()
        let a = await alice.address, b = await bob.address, c = await carol.address
        for (device, contacts) in [(alice, [b, c]), (bob, [a, c]), (carol, [a, b])] + bobs.map({ ($0, [a, c]) }) {
            for contact in contacts { try await device.engine.addContact(contact) }
            try await device.engine.stockKeyPackages()
        }
        return (alice, bob, carol, bobs)
    }

    @Test("a device linked while the group is active reads what follows, not what came before, and is read by everyone; revoked, it reads nothing more, every roster drops it, nothing is undecryptable")
    func linkAndRevokeWhileActive() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, carol, _) = try await Self.people(on: relay, in: directory)
            let b = await bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "Trip", members: [b, c]).id
            _ = try await alice.engine.send(text: "before the laptop", toGroup: id)
            for device in [bob, carol] { try await device.engine.receivePending() }

            // Bob links his laptop; his phone's next drain adds it to the group (its KeyPackage, an Add, a Welcome).
            let (laptop, _) = try await TestDevice.link(to: bob, on: relay, in: directory, label: "bob-laptop")
            let laptopAddress = await laptop.deviceAddress
            try await bob.engine.receivePending()
            #expect(try bob.store.group(id)?.members.contains(laptopAddress) == true)

            _ = try await alice.engine.send(text: "after the laptop", toGroup: id)
            for device in [laptop, bob, carol] { try await device.engine.receivePending() }
            #expect(try texts(laptop, id) == ["after the laptop"], "the new device reads what follows, never what came before")
            #expect(try laptop.store.group(id)?.name == "Trip")

            _ = try await laptop.engine.send(text: "from the laptop", toGroup: id)
            for device in [alice, bob, carol] {
                try await device.engine.receivePending()
                #expect(try texts(device, id).last == "from the laptop")
            }

            // Bob revokes the laptop from his phone: its leaf leaves the group at once.
            let laptopState = try #require(try laptop.store.group(id))
            try await bob.engine.revokeDevice(laptopAddress.deviceId)
            #expect(try bob.store.group(id)?.members.contains(laptopAddress) == false)
            _ = try await alice.engine.send(text: "after the revoke", toGroup: id)

            // What Carol's mailbox holds now (not acknowledged), given to the laptop's saved state: nothing opens.
            let page = try await carol.engine.relay.fetchWithGroups(limit: 100, after: nil, token: try await carol.token())
            let later = page.messages.compactMap(\.group)
            #expect(later.contains { $0.kind == "message" })
            var old = try Group(serialized: SecretBytes(laptopState.state))
            var opened = 0
            for entry in later {
                if case .application? = try? old.process(try MLSMessage(tlsEncoded: entry.message.bytes)) { opened += 1 }
            }
            #expect(opened == 0)
            await #expect(throws: ClientError.self) { try await laptop.engine.receivePending() }

            for device in [alice, bob, carol] {
                try await device.engine.receivePending()
                #expect(try device.store.group(id)?.members.contains(laptopAddress) == false, "every roster drops the laptop")
                #expect(try texts(device, id).last == "after the revoke")
                #expect(try failures(device, id).isEmpty)
            }
            #expect(try failures(laptop, id).isEmpty)
        }
    }

    @Test("a member whose send names a device that left its account's list removes that leaf and sends again")
    func sendRemovesADeviceThatLeftItsList() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, carol, bobs) = try await Self.people(on: relay, in: directory, bobDevices: 1)
            let laptop = bobs[0], laptopAddress = await bobs[0].deviceAddress
            let b = await bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "g", members: [b, c]).id
            for device in [bob, laptop, carol] { try await device.engine.receivePending() }

            // The laptop leaves Bob's list without any group being told (another client, an interrupted revoke).
            let phone = try #require(await bob.engine.account.deviceList.device(1))
            try await bob.publishDevices([phone])
            let sent = try await carol.engine.send(text: "still here", toGroup: id)
            #expect(sent.state == .sent)
            for device in [alice, bob, carol] {
                try await device.engine.receivePending()
                #expect(try device.store.group(id)?.members.contains(laptopAddress) == false)
                #expect(try texts(device, id) == ["still here"])
                #expect(try failures(device, id).isEmpty)
            }
        }
    }

    @Test("two devices of an account racing to add its new device end with one leaf; the new device joins once")
    func racingAddsEndWithOneLeaf() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, carol, bobs) = try await Self.people(on: relay, in: directory, bobDevices: 1)
            let laptop = bobs[0]
            let b = await bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "race", members: [b, c]).id
            for device in [bob, laptop, carol] { try await device.engine.receivePending() }

            let (tablet, _) = try await TestDevice.link(to: bob, on: relay, in: directory, label: "bob-tablet")
            let tabletAddress = await tablet.deviceAddress
            try await laptop.engine.refreshOwnDeviceList()
            async let byPhone = bob.engine.addOwnDevicesToGroups()
            async let byLaptop = laptop.engine.addOwnDevicesToGroups()
            let (phoneAdded, laptopAdded) = try await (byPhone, byLaptop)
            #expect((phoneAdded[id] ?? []) + (laptopAdded[id] ?? []) == [tabletAddress.deviceId], "one of the two added it")

            _ = try await alice.engine.send(text: "hello tablet", toGroup: id)
            let everyone = [alice, bob, laptop, carol, tablet]
            for device in everyone { try await device.engine.receivePending() }
            let records = try everyone.map { try #require(try $0.store.group(id)) }
            #expect(Set(records.map(\.epoch)).count == 1)
            for record in records { #expect(record.members.filter { $0 == tabletAddress }.count == 1) }
            #expect(try texts(tablet, id) == ["hello tablet"])
            for device in everyone { #expect(try failures(device, id).isEmpty) }
        }
    }
}
