import Foundation
@testable import ParleyClient
import ParleyProtocol
import ParleyTestSupport
import Testing

/// The Welcome race (issue #22): another member's commit lands right after the commit that adds a device
/// is accepted. The Welcome travels in that commit (PROTOCOL.md §17.2), so the new device finds it before
/// the other commit in its mailbox, joins, then processes that commit: it reads the group.
@Suite("Engine: a commit right after an add")
struct GroupWelcomeRaceTests {
    @Test("Bob commits between Alice's add of Carol and anything Alice does next: Carol joins, catches up and reads, and is read")
    func commitBetweenAddAndWelcome() async throws {
        let w = try await GroupEngineTests.world()
        let bobAddress = await w.bob.address, carolAddress = await w.carol.address
        let id = try await w.alice.engine.createGroup(name: "Race", members: [bobAddress]).id
        for device in [w.bob, w.bob2] { try await device.engine.receivePending() }
        let bob = w.bob
        w.relay.tap.afterNextAcceptedCommit {
            // Alice's commit adding Carol is accepted: Bob processes it and commits at once (fresh keys),
            // then writes in the epoch his commit starts.
            try await bob.engine.receivePending()
            _ = try await bob.engine.updateOwnLeaf(in: id)
            _ = try await bob.engine.send(text: "said after the race", toGroup: id)
        }
        _ = try await w.alice.engine.addMembers([carolAddress], to: id)

        try await w.carol.engine.receivePending()
        let bobEpoch = try #require(try w.bob.store.group(id)?.epoch)
        #expect(try w.carol.store.group(id)?.epoch == bobEpoch, "Carol joined, then processed Bob's commit")
        #expect(try w.carol.store.messages(in: .group(id), limit: 100).filter { $0.direction != .system }.map(\.text) == ["said after the race"],
                "Carol reads what was said in the epoch after the one she was added in (notices aside)")

        _ = try await w.carol.engine.send(text: "Carol here", toGroup: id)
        for device in [w.alice, w.bob, w.bob2] {
            try await device.engine.receivePending()
            #expect(try device.store.messages(in: .group(id), limit: 100).filter { $0.state != .failed }.map(\.text).contains("Carol here"))
            #expect(try device.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed }, "nothing undecryptable")
        }
    }
}
