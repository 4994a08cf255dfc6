import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// `Operations.groupMembers` (the chat window's `/members`) on real engines and store files, the relay core
/// in process: each member account once, its devices in the group, and this device's trust in it.
@Suite("Operations: a group's members")
struct GroupMembersOperationTests {
    @Test("each account once, with its devices in the group, its nickname and this device's trust")
    func membersWithTrustAndDevices() async throws {
        let network = InProcessNetwork()
        let relay = try network.addRelay("127.0.0.1:7311")
        let directory = try TemporaryDirectory("group-members")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: relay.name, in: directory)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: relay.name, in: directory)
        let carol = try await ClientDevice.create("carol", on: relay, relayName: relay.name, in: directory)
        let bob2 = try await bob.addDevice(2, in: directory)
        try await bob.engine.refreshOwnDeviceList()
        let a = await alice.address, b = await bob.address, c = await carol.address
        for device in [bob, bob2, carol] { try await device.engine.stockKeyPackages() }
        for contact in [b, c] { _ = try await alice.engine.addContact(contact) }
        for contact in [a, b] { _ = try await carol.engine.addContact(contact) }
        _ = try await Operations(engine: alice.engine).renameContact(c, to: "Carol\u{1B}[2J")

        let group = try await Operations(engine: alice.engine).createGroup(name: "Climbing", members: [b, c])
        let id = try #require(GroupId(hex: group.id))
        let members = try Operations(engine: alice.engine).groupMembers(id)
        #expect(members.map(\.address) == [a, b, c].map(\.description))
        #expect(members.map(\.devices) == [1, 2, 1])
        #expect(members.map(\.isSelf) == [true, false, false])
        #expect(members.map(\.trust) == [nil, .unverified, .unverified])
        #expect(members.map(\.name) == ["", "", "Carol[2J"], "the nickname neutralised")

        // Carol's view once she joined from the Welcome: the same accounts, herself the one that is hers.
        try await carol.engine.receivePending()
        let seen = try Operations(engine: carol.engine).groupMembers(id)
        #expect(seen.map(\.address) == [a, b, c].map(\.description))
        #expect(seen.map(\.devices) == [1, 2, 1] && seen.map(\.trust) == [.unverified, .unverified, nil])
        #expect(seen.map(\.isSelf) == [false, false, true])
    }
}
