import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport
import Testing

/// Groups in the engine, on the relay core in process with real store files: three accounts, Bob with two
/// devices; every device a leaf; the relay orders the commits.
@Suite("Engine: groups")
struct GroupEngineTests {
    struct World {
        let relay: InProcessRelay
        let alice: ClientDevice, bob: ClientDevice, bob2: ClientDevice, carol: ClientDevice
        var all: [ClientDevice] { [alice, bob, bob2, carol] }
    }

    static func world() async throws -> World {
        let network = InProcessNetwork()
        let relay = try network.addRelay("127.0.0.1:7301")
        let directory = try TemporaryDirectory("groups")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: relay.name, in: directory)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: relay.name, in: directory)
        let carol = try await ClientDevice.create("carol", on: relay, relayName: relay.name, in: directory)
        let bob2 = try await bob.addDevice(2, in: directory)
        try await bob.engine.refreshOwnDeviceList()
        let a = await alice.address, b = await bob.address, c = await carol.address
        for (device, contacts) in [(alice, [b, c]), (bob, [a, c]), (bob2, [a, c]), (carol, [a, b])] {
            for contact in contacts { try await device.engine.addContact(contact) }
            try await device.engine.stockKeyPackages()
        }
        return World(relay: relay, alice: alice, bob: bob, bob2: bob2, carol: carol)
    }

    /// The messages members wrote (not Parley's notices, not failures).
    func texts(_ device: ClientDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state != .failed && $0.direction != .system }.map(\.text)
    }

    func notices(_ device: ClientDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.direction == .system }.map(\.text)
    }

    func failures(_ device: ClientDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state == .failed }.map(\.text)
    }

    @Test("create, converse on every device, add a member who cannot read earlier messages, remove one who cannot read later ones, rename, leave")
    func lifeOfAGroup() async throws {
        let w = try await Self.world()
        let bobAddress = await w.bob.address, carolAddress = await w.carol.address
        let group = try await w.alice.engine.createGroup(name: "Climbing\u{1B}[31m club", members: [bobAddress])
        #expect(group.name == "Climbing[31m club", "the escape is dropped from the name")
        #expect(Set(group.members.map(\.description)) == Set([await w.alice.deviceAddress, await w.bob.deviceAddress, await w.bob2.deviceAddress].map(\.description)))
        let id = group.id

        _ = try await w.alice.engine.send(text: "hello Bob", toGroup: id)
        for device in [w.bob, w.bob2] {
            try await device.engine.receivePending()
            #expect(try texts(device, id) == ["hello Bob"])
            #expect(try device.store.group(id)?.name == "Climbing[31m club")
        }
        _ = try await w.bob2.engine.send(text: "hi from my laptop", toGroup: id)
        try await w.alice.engine.receivePending()
        try await w.bob.engine.receivePending()
        #expect(try texts(w.alice, id) == ["hello Bob", "hi from my laptop"])
        #expect(try w.bob.store.messages(in: .group(id)).last?.direction == .outgoing, "his own laptop's message, on his phone")

        // Carol joins: she reads what comes after, never what came before.
        _ = try await w.bob.engine.addMembers([carolAddress], to: id)
        _ = try await w.bob.engine.send(text: "welcome Carol", toGroup: id)
        try await w.carol.engine.receivePending()
        #expect(try texts(w.carol, id) == ["welcome Carol"])
        #expect(try w.carol.store.group(id)?.name == "Climbing[31m club")
        for device in [w.alice, w.bob2] { try await device.engine.receivePending() }
        let epoch = try #require(try w.alice.store.group(id)?.epoch)
        for device in w.all { #expect(try device.store.group(id)?.epoch == epoch) }

        // Bob removed (both devices): what follows is not for him.
        let bobState = try #require(try w.bob.store.group(id))
        _ = try await w.alice.engine.removeMembers([bobAddress], from: id)
        _ = try await w.alice.engine.send(text: "just us now", toGroup: id)
        try await w.carol.engine.receivePending()
        #expect(try texts(w.carol, id).last == "just us now")
        try await w.bob.engine.receivePending()
        #expect(try w.bob.store.group(id)?.active == false)
        #expect(try !texts(w.bob, id).contains("just us now"))
        // Even his state from before the removal cannot open the later message.
        let later = try await carolSees(w, id)
        var old = try Group(serialized: SecretBytes(bobState.state))
        #expect(throws: MLSError.self) { try old.process(later) }

        // Rename, then Carol leaves.
        _ = try await w.carol.engine.renameGroup(id, to: "Just two")
        try await w.alice.engine.receivePending()
        #expect(try w.alice.store.group(id)?.name == "Just two")
        try await w.carol.engine.leaveGroup(id)
        #expect(try w.carol.store.group(id)?.active == false)
        try await w.alice.engine.receivePending()
        // Alice's next commit carries out Carol's request to leave; Carol is out of the tree.
        let after = try await w.alice.engine.updateOwnLeaf(in: id)
        #expect(!after.members.contains { $0.address == carolAddress.description })
        #expect(try failures(w.alice, id).isEmpty && failures(w.carol, id).isEmpty && failures(w.bob2, id).isEmpty)
    }

    @Test("joins, removals, renames and leaving are told in the group's conversation on every device, once each")
    func membershipNotices() async throws {
        let w = try await Self.world()
        let bob = await w.bob.address, carol = await w.carol.address
        let id = try await w.alice.engine.createGroup(name: "Trip", members: [bob]).id
        _ = try await w.alice.engine.addMembers([carol], to: id)
        for device in w.all { try await device.engine.receivePending() }
        _ = try await w.carol.engine.renameGroup(id, to: "Trip\u{1B}[2J 2")
        for device in w.all { try await device.engine.receivePending() }
        _ = try await w.alice.engine.removeMembers([bob], from: id)
        for device in w.all { try await device.engine.receivePending() }
        try await w.carol.engine.leaveGroup(id)

        let renamed = "renamed the group to \u{201C}Trip[2J 2\u{201D}."
        #expect(try notices(w.alice, id) == ["You created the group \u{201C}Trip\u{201D}.", "\(bob) was added to the group.",
                                             "\(carol) was added to the group.", "\(carol) \(renamed)", "\(bob) is no longer in the group."])
        for device in [w.bob, w.bob2] {
            #expect(try notices(device, id) == ["You were added to the group.", "\(carol) was added to the group.", "\(carol) \(renamed)",
                                                "You are no longer in the group."])
        }
        #expect(try notices(w.carol, id) == ["You were added to the group.", "You \(renamed)", "\(bob) is no longer in the group.",
                                             "You left the group."])
        // A notice is Parley's, not a member's: it never counts as unread.
        #expect(try w.alice.store.messages(in: .group(id), limit: 100).filter { $0.direction == .system }.allSatisfy { $0.state == .received })
    }

    @Test("a member's request to leave is committed once, by the remaining member with the lowest leaf, after the drain that brought it")
    func leaveIsCommittedPromptly() async throws {
        let w = try await Self.world()
        let bob = await w.bob.address, carol = await w.carol.address
        let id = try await w.alice.engine.createGroup(name: "Trip", members: [bob, carol]).id
        for device in w.all { try await device.engine.receivePending() }
        let epoch = try #require(try w.alice.store.group(id)?.epoch)
        try await w.carol.engine.leaveGroup(id)
        // Bob's devices (higher leaves than Alice's) read the request first: they leave it to her.
        for device in [w.bob, w.bob2] { try await device.engine.receivePending() }
        #expect(try w.bob.store.group(id)?.epoch == epoch)
        try await w.alice.engine.receivePending()
        for device in [w.bob, w.bob2] { try await device.engine.receivePending() }
        for device in [w.alice, w.bob, w.bob2] {
            let record = try #require(try device.store.group(id))
            #expect(!record.members.contains { $0.address == carol.description })
            #expect(record.epoch == epoch + 1, "one commit")
            #expect(try notices(device, id).last == "\(carol) is no longer in the group.")
        }
    }

    @Test("a change made on this device and one received are told to the front ends as the notice, then groupChanged")
    func membershipEvents() async throws {
        let w = try await Self.world()
        let bob = await w.bob.address
        let aliceEvents = await w.alice.engine.subscribe()
        let id = try await w.alice.engine.createGroup(name: "Trip", members: [bob]).id
        // In this order: each `arrives` reads the stream on from where the last one stopped.
        func isNotice(_ prefix: String) -> @Sendable (EngineEvent) -> Bool {
            { if case .message(let m) = $0 { m.direction == .system && m.text.hasPrefix(prefix) } else { false } }
        }
        #expect(await arrives(on: aliceEvents, where: isNotice("You created the group")))
        #expect(await arrives(on: aliceEvents) { $0 == .groupChanged(id, .joined) })
        #expect(await arrives(on: aliceEvents, where: isNotice("\(bob) was added")))
        #expect(await arrives(on: aliceEvents) { $0 == .groupChanged(id, .members(added: [bob], removed: [])) })
        let bobEvents = try await w.bob.engine.receivePending()
        #expect(bobEvents.contains(.groupChanged(id, .joined)))
        #expect(bobEvents.contains(.groupChanged(id, .renamed("Trip"))), "the joiner learns the name, with no notice")
    }

    /// The application message Alice sends next, as Carol's mailbox holds it (read without acknowledging).
    private func carolSees(_ w: World, _ id: GroupId) async throws -> MLSMessage {
        _ = try await w.alice.engine.send(text: "secret after removal", toGroup: id)
        let page = try await w.relay.calls.fetchWithGroups(limit: 100, after: nil, token: try await w.carol.token())
        let entry = try #require(page.messages.compactMap(\.group).last)
        let message = try MLSMessage(tlsEncoded: entry.message.bytes)
        try await w.carol.engine.receivePending()
        return message
    }

    @Test("two members commit at the same moment, 20 times: one epoch, one epoch authenticator, nothing undecryptable")
    func concurrentCommits() async throws {
        let w = try await Self.world()
        let bobAddress = await w.bob.address, carolAddress = await w.carol.address
        let id = try await w.alice.engine.createGroup(name: "race", members: [bobAddress, carolAddress]).id
        for device in w.all { try await device.engine.receivePending() }
        for round in 0..<20 {
            async let first = w.alice.engine.renameGroup(id, to: "a\(round)")
            async let second = w.carol.engine.send(text: "c\(round)", toGroup: id)
            _ = try await (first, second)
            for device in w.all { try await device.engine.receivePending() }
        }
        // A race of real commits: Alice and Carol each rekey (an empty commit with a path).
        for _ in 0..<20 {
            async let a: GroupRecord = w.alice.engine.updateOwnLeaf(in: id)
            async let c: GroupRecord = w.carol.engine.updateOwnLeaf(in: id)
            _ = try await (a, c)
        }
        for device in w.all { try await device.engine.receivePending() }
        let records = try w.all.map { try #require(try $0.store.group(id)) }
        #expect(Set(records.map(\.epoch)).count == 1)
        let authenticators = try w.all.map { device in
            try Group(serialized: SecretBytes(try #require(try device.store.group(id)).state)).epochAuthenticator.unprotectedBytes
        }
        #expect(Set(authenticators).count == 1)
        for device in w.all { #expect(try failures(device, id).isEmpty) }
        #expect(try texts(w.bob2, id).count == 20)
    }

    @Test("a member offline for many epochs catches up in order from the mailbox")
    func offlineMemberCatchesUp() async throws {
        let w = try await Self.world()
        let bobAddress = await w.bob.address
        let id = try await w.alice.engine.createGroup(name: "busy", members: [bobAddress]).id
        for n in 0..<30 {
            _ = try await w.alice.engine.updateOwnLeaf(in: id)
            _ = try await w.alice.engine.send(text: "m\(n)", toGroup: id)
        }
        try await w.bob2.engine.receivePending()
        #expect(try texts(w.bob2, id) == (0..<30).map { "m\($0)" })
        #expect(try w.bob2.store.group(id)?.epoch == w.alice.store.group(id)?.epoch)
        #expect(try failures(w.bob2, id).isEmpty)
    }

    @Test("a replayed group message and one under another group's id are refused and change nothing")
    func replayAndWrongGroup() async throws {
        let w = try await Self.world()
        let bobAddress = await w.bob.address
        let id = try await w.alice.engine.createGroup(name: "one", members: [bobAddress]).id
        let other = try await w.alice.engine.createGroup(name: "two", members: [bobAddress]).id
        try await w.bob.engine.receivePending()
        _ = try await w.alice.engine.send(text: "once", toGroup: id)
        let token = try await w.bob.token()
        let page = try await w.relay.calls.fetchWithGroups(limit: 100, after: nil, token: token)
        let entry = try #require(page.messages.compactMap(\.group).last)
        try await w.bob.engine.receivePending()
        #expect(try texts(w.bob, id) == ["once"])
        let before = try #require(try w.bob.store.group(id)), beforeOther = try #require(try w.bob.store.group(other))

        // The same ciphertext again, and under the other group's id, each delivered as the relay would.
        let aliceGroup = try Group(serialized: SecretBytes(try #require(try w.alice.store.group(id)).state))
        let secret = Engine.sendSecret(aliceGroup)
        let bobDevice = GroupRecipient(address: bobAddress.description, deviceId: 1)
        try await w.relay.send(GroupSend(epoch: entry.epoch, message: entry.message, recipients: [bobDevice]), toGroup: id.hex, secret: secret)
        let otherGroup = try Group(serialized: SecretBytes(try #require(try w.alice.store.group(other)).state))
        try await w.relay.send(GroupSend(epoch: otherGroup.epoch, message: entry.message, recipients: [bobDevice]),
                               toGroup: other.hex, secret: Engine.sendSecret(otherGroup))
        try await w.bob.engine.receivePending()
        #expect(try texts(w.bob, id) == ["once"])
        #expect(try texts(w.bob, other).isEmpty)
        #expect(try w.bob.store.group(id) == before)
        #expect(try w.bob.store.group(other) == beforeOther)
    }

    @Test("a leaf whose key is not in its account's signed device list is refused")
    func leafOutsideTheDeviceListIsRefused() async throws {
        let w = try await Self.world()
        let check = try await w.alice.engine.leafCheck()
        let bob = await w.bob.deviceAddress
        let bobKey = await w.bob.engine.account.device.publicKey.bytes
        #expect(check.validator(.basic(identity: GroupCredential.identity(bob)), bobKey))
        #expect(!check.validator(.basic(identity: GroupCredential.identity(bob)), Ed25519.KeyPair().publicKey.bytes))
        #expect(!check.validator(.basic(identity: GroupCredential.identity(DeviceAddress(address: bob.address, deviceId: 9))), bobKey))
        #expect(!check.validator(.basic(identity: Array("bob".utf8)), bobKey))
        #expect(check.refusedAccounts == [bob.address])
    }
}
