import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// What a group message carries besides text (PROTOCOL.md §17.7): receipts, typing, reactions, edits, deletes
/// and the disappearing-message timer, on the relay core in process with real store files. Alice, Bob (two
/// devices) and Carol; every device a leaf.
@Suite("Engine: contents in groups")
struct GroupContentTests {
    typealias World = GroupEngineTests.World

    /// The group of the world: Alice made it with Bob and Carol, and every device has joined.
    static func group(_ w: World) async throws -> GroupId {
        let bob = await w.bob.address, carol = await w.carol.address
        let id = try await w.alice.engine.createGroup(name: "Lunch", members: [bob, carol]).id
        for device in w.all { try await device.engine.receivePending() }
        return id
    }

    /// The group's messages on `device`, without the notices (joins, renames, timers).
    func messages(_ device: ClientDevice, _ id: GroupId) throws -> [MessageRecord] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.direction != .system }
    }

    func message(_ device: ClientDevice, _ id: GroupId, _ clientId: [UInt8]) throws -> MessageRecord {
        try #require(try messages(device, id).first { $0.clientMessageId == clientId })
    }

    @Test("read receipts are one group message: the author's copy becomes read, the reader's other device marks it seen; no delivery receipt goes 1:1")
    func receipts() async throws {
        let w = try await GroupEngineTests.world()
        let id = try await Self.group(w)
        let bob = await w.bob.address
        let sent = try await w.alice.engine.send(text: "lunch at noon?", toGroup: id)
        #expect(sent.state == .sent)
        for device in [w.bob, w.bob2, w.carol] { try await device.engine.receivePending() }
        // Receiving a group message answers nobody: no 1:1 delivery receipt reaches Alice.
        let quiet = try await w.alice.engine.receivePending()
        #expect(!quiet.contains { if case .receipt = $0 { true } else { false } }, "\(quiet)")
        #expect(try message(w.alice, id, sent.clientMessageId).state == .sent)

        // Bob reads the group on his phone: one receipt to the group.
        #expect(try await w.bob.engine.markRead(.group(id)) == 1)
        #expect(try message(w.bob, id, sent.clientMessageId).state == .seen)
        let atAlice = try await w.alice.engine.receivePending()
        #expect(atAlice.contains(.receipt(in: .group(id), from: bob, read: true, messageIds: [sent.clientMessageId])), "\(atAlice)")
        #expect(try message(w.alice, id, sent.clientMessageId).state == .read)
        let atLaptop = try await w.bob2.engine.receivePending()
        #expect(atLaptop.contains(.readElsewhere(conversation: .group(id), messageIds: [sent.clientMessageId])), "\(atLaptop)")
        #expect(try message(w.bob2, id, sent.clientMessageId).state == .seen)
        // Carol sees the receipt go by; it names none of her messages and changes nothing of hers.
        let atCarol = try await w.carol.engine.receivePending()
        #expect(!atCarol.contains { if case .receipt = $0 { true } else { false } })
        #expect(try message(w.carol, id, sent.clientMessageId).state == .received)
        // Receipts are not messages: nobody's conversation grew.
        for device in w.all { #expect(try messages(device, id).count == 1) }
    }

    @Test("typing in a group reaches every other member's devices and is not stored")
    func typing() async throws {
        let w = try await GroupEngineTests.world()
        let id = try await Self.group(w)
        let carol = await w.carol.address
        try await w.carol.engine.sendTyping(toGroup: id, started: true)
        for device in [w.alice, w.bob, w.bob2] {
            let events = try await device.engine.receivePending()
            #expect(events == [.typing(in: .group(id), from: carol, started: true)])
            #expect(try messages(device, id).isEmpty)
        }
    }

    @Test("reactions, edits and deletes apply on every member's devices; a member's forged edit and delete of another's message change nothing")
    func actions() async throws {
        let w = try await GroupEngineTests.world()
        let id = try await Self.group(w)
        let alice = await w.alice.address
        let question = try await w.alice.engine.send(text: "lunch at noon?", toGroup: id)
        let target = question.clientMessageId
        for device in [w.bob, w.bob2, w.carol] { try await device.engine.receivePending() }

        try await w.bob.engine.react("👍", to: target, by: alice, in: .group(id))
        try await w.carol.engine.react("🎉", to: target, by: alice, in: .group(id))
        // Carol's commit takes the epoch first: Alice's edit is refused, sent again in the new epoch, and
        // applied to her copy once. Carol commits before reading the reactions of the epoch she ends: she
        // opens them late, with the epoch's secrets she keeps.
        _ = try await w.carol.engine.updateOwnLeaf(in: id)
        try await w.alice.engine.edit(target, in: .group(id), text: "lunch at 12:30?")
        for device in w.all { try await device.engine.receivePending() }
        for device in w.all {
            let seen = try message(device, id, target)
            #expect(seen.text == "lunch at 12:30?" && seen.earlierTexts.map(\.text) == ["lunch at noon?"], "\(seen)")
            #expect(Set(seen.reactions.map(\.emoji)) == ["👍", "🎉"], "\(seen.reactions)")
        }

        // Carol, a member, edits and deletes Alice's message: every device (hers too) refuses both.
        let before = try w.all.map { try message($0, id, target) }
        try await w.carol.engine.edit(target, in: .group(id), text: "lunch cancelled")
        try await w.carol.engine.deleteForEveryone(target, in: .group(id))
        var changed: [EngineEvent] = []
        for device in w.all { changed += try await device.engine.receivePending() }
        #expect(!changed.contains { if case .messageChanged = $0 { true } else { false } }, "\(changed)")
        #expect(try w.all.map { try message($0, id, target) } == before)

        // Alice deletes her own message: gone for everyone.
        try await w.alice.engine.deleteForEveryone(target, in: .group(id))
        for device in w.all { try await device.engine.receivePending() }
        for device in w.all {
            let gone = try message(device, id, target)
            #expect(gone.deleted && gone.text.isEmpty && gone.reactions.isEmpty)
        }
    }

    @Test("a member sets the group's disappearing timer: every member adopts it, and a message sent under it expires on every device")
    func disappearing() async throws {
        let clock = ManualClock(SystemWallClock().nowMilliseconds())
        let network = InProcessNetwork()
        let relay = try network.addRelay("127.0.0.1:7302")
        let directory = try TemporaryDirectory("group-timer")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: relay.name, in: directory, clock: clock)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: relay.name, in: directory, clock: clock)
        let carol = try await ClientDevice.create("carol", on: relay, relayName: relay.name, in: directory, clock: clock)
        let all = [alice, bob, carol]
        let a = await alice.address, b = await bob.address, c = await carol.address
        for (device, contacts) in [(alice, [b, c]), (bob, [a, c]), (carol, [a, b])] {
            for contact in contacts { try await device.engine.addContact(contact) }
            try await device.engine.stockKeyPackages()
        }
        let id = try await alice.engine.createGroup(name: "Brief", members: [b, c]).id
        for device in all { try await device.engine.receivePending() }

        try await bob.engine.setDisappearingTimer(60, inGroup: id)
        for device in [alice, carol] {
            let events = try await device.engine.receivePending()
            #expect(events.contains(.disappearingTimer(in: .group(id), seconds: 60, by: b)), "\(events)")
        }
        for device in all { #expect(try device.engine.disappearingTimer(of: .group(id)) == 60) }

        let sent = try await alice.engine.send(text: "this goes in a minute", toGroup: id)
        #expect(sent.expiresAt == sent.sentAt + 60_000)
        for device in [bob, carol] { try await device.engine.receivePending() }
        for device in all {
            let copy = try message(device, id, sent.clientMessageId)
            #expect(copy.expiresAt == clock.nowMilliseconds() + 60_000, "\(copy)")
        }
        clock.advance(by: 61_000)
        for device in all {
            let gone = try await device.engine.sweepExpired()
            #expect(gone.map(\.clientMessageId) == [sent.clientMessageId])
            #expect(try !messages(device, id).contains { $0.clientMessageId == sent.clientMessageId })
        }
    }
}
