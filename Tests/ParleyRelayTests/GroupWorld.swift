import ParleyTestSupport

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
