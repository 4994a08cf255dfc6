import ParleyTestSupport
import ParleyClient
import ParleyProtocol

/// Where the end-to-end group tests start: three accounts on one relay process, Bob with two devices, each
/// account a contact of the others, every device with KeyPackages on the relay.
struct GroupWorld {
    let relay: RelayProcess
    let alice: TestDevice, bob: TestDevice, bob2: TestDevice, carol: TestDevice
    var all: [TestDevice] { [alice, bob, bob2, carol] }

    static func make(on relay: RelayProcess, in directory: TemporaryDirectory) async throws -> GroupWorld {
        let alice = try await TestDevice.create("alice", on: relay, in: directory)
        let bob = try await TestDevice.create("bob", on: relay, in: directory)
        let carol = try await TestDevice.create("carol", on: relay, in: directory)
        let bob2 = try await bob.addDevice(2, on: relay, in: directory)
        try await bob.engine.refreshOwnDeviceList()
        let a = await alice.address, b = await bob.address, c = await carol.address
        for (device, contacts) in [(alice, [b, c]), (bob, [a, c]), (bob2, [a, c]), (carol, [a, b])] {
            for contact in contacts { try await device.engine.addContact(contact) }
            try await device.engine.stockKeyPackages()
        }
        return GroupWorld(relay: relay, alice: alice, bob: bob, bob2: bob2, carol: carol)
    }
}

/// Two accounts in a group of two: Alice on `transport` (a test double in front of the relay, to lose or hook
/// her commits' answers), Bob on the relay itself; contacts of each other, every device at the group's epoch.
struct GroupPair {
    let alice: TestDevice, bob: TestDevice, id: GroupId
    var parts: (TestDevice, TestDevice, GroupId) { (alice, bob, id) }

    static func make(aliceOn transport: any RelayTransport, relay: RelayProcess, in directory: TemporaryDirectory,
                     name: String) async throws -> GroupPair {
        let alice = try await TestDevice.create("alice", on: transport, relayName: relay.name, in: directory)
        let bob = try await TestDevice.create("bob", on: relay, in: directory)
        let a = await alice.address, b = await bob.address
        try await alice.engine.addContact(b)
        try await bob.engine.addContact(a)
        try await bob.engine.stockKeyPackages()
        try await alice.engine.stockKeyPackages()
        let id = try await alice.engine.createGroup(name: name, members: [b]).id
        _ = try await bob.engine.receivePending()
        _ = try await alice.engine.receivePending()
        return GroupPair(alice: alice, bob: bob, id: id)
    }
}
