import Foundation
@testable import ParleyClient
import ParleyMLS
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// Groups through the operations layer, on a parley-relay process on loopback: three accounts, Bob with
/// two devices, every device a leaf; JSON through the one encoder; require_verified for members too.
@Suite("End to end: groups")
struct GroupEndToEndTests {
    @Test("create, converse, add (the joiner reads only what follows), remove, rename, leave: every device agrees, nothing undecryptable")
    func groupOnARealRelay() async throws {
        try await withRelay { relay, directory in
            let world = try await GroupWorld.make(on: relay, in: directory)
            let (alice, bob, bob2, carol) = (world.alice, world.bob, world.bob2, world.carol)
            let a = await alice.address, b = await bob.address, c = await carol.address
            let ops = Operations(engine: alice.engine, policy: Policy())
            let created = try await ops.createGroup(name: "Trip", members: [b])
            #expect(created.members == [a.description, b.description] && created.devices == 3)
            let id = try ops.groupId(created.id)
            #expect(try ops.groupId(created.base64Id) == id, "signal-cli's base64 id names the same group")
            let json = try JSONValue(encoding: created).serialized
            #expect(json.contains("\"name\":\"Trip\"") && json.contains("\"base64Id\""))

            _ = try await ops.sendToGroup(id, text: "before Carol")
            _ = try await ops.addToGroup(id, members: [c])
            let sent = try await ops.sendToGroup(id, text: "after Carol")
            #expect(sent.state == "sent")
            for device in [bob, bob2, carol] { try await device.engine.receivePending() }
            func texts(_ device: TestDevice) throws -> [String] {
                try device.store.messages(in: .group(id), limit: 100).filter { $0.state != .failed && $0.direction != .system }.map(\.text)
            }
            #expect(try texts(bob) == ["before Carol", "after Carol"])
            #expect(try texts(bob2) == ["before Carol", "after Carol"])
            #expect(try texts(carol) == ["after Carol"])
            #expect(try Operations(engine: carol.engine).showGroup(id).name == "Trip")

            // Bob's laptop answers; Alice removes Bob; Carol renames; Alice sees it all.
            _ = try await Operations(engine: bob2.engine).sendToGroup(id, text: "from the laptop")
            try await alice.engine.receivePending()
            _ = try await ops.removeFromGroup(id, members: [b])
            try await carol.engine.receivePending()
            _ = try await Operations(engine: carol.engine).renameGroup(id, to: "Trip (no Bob)")
            _ = try await Operations(engine: carol.engine).sendToGroup(id, text: "Bob is gone")
            for device in [alice, bob, bob2] { try await device.engine.receivePending() }
            #expect(try texts(alice) == ["before Carol", "after Carol", "from the laptop", "Bob is gone"])
            #expect(try ops.showGroup(id).name == "Trip (no Bob)")
            #expect(try !texts(bob).contains("Bob is gone") && !texts(bob2).contains("Bob is gone"))
            #expect(try Operations(engine: bob.engine).showGroup(id).active == false)

            // Carol leaves; the list shows it.
            let left = try await Operations(engine: carol.engine).leaveGroup(id)
            #expect(!left.active)
            await #expect(throws: ClientError.unknownGroup(id.hex)) { try await Operations(engine: carol.engine).sendToGroup(id, text: "still here?") }
            for device in [alice, bob, bob2, carol] {
                #expect(try device.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed })
            }
        }
    }

    @Test("require_verified applies to group members: an unverified member stops the send and the add")
    func requireVerifiedCoversMembers() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await bob.engine.stockKeyPackages()
            let open = Operations(engine: alice.engine, policy: Policy())
            let id = try open.groupId(try await open.createGroup(name: "g", members: [bobAddress]).id)
            var strict = Policy()
            strict.requireVerified = true
            let ops = Operations(engine: alice.engine, policy: strict)
            await #expect(throws: PolicyError.self) { try await ops.sendToGroup(id, text: "no") }
            await #expect(throws: PolicyError.self) { try await ops.createGroup(name: "h", members: [bobAddress]) }
            #expect(try alice.store.messages(in: .group(id), limit: 10).allSatisfy { $0.direction == .system })
            #expect(throws: OperationError.self) { try ops.groupId("not-a-group") }
        }
    }
}
