import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Every group send names every device of the epoch's tree, the sender's own included, so the relay cannot
/// tell the sender from the recipient list (PROTOCOL.md §17.4); the sender drops its own copy unseen. On a
/// relay process on loopback, on SQLite and on PostgreSQL.
@Suite("End to end: a group send names every device, the sender's too; the sender drops its copy")
struct GroupOwnCopyEndToEndTests {
    @Test("two members' messages and a commit of one epoch are queued for the same devices; own copies of messages, commits and a leave change nothing",
          arguments: StorageKind.allCases)
    func sameRecipientsWhoeverSends(kind: StorageKind) async throws {
        try await withRelay(try await Self.storageArguments(kind)) { relay, directory in
            let world = try await GroupWorld.make(on: relay, in: directory)
            let (alice, bob2, carol) = (world.alice, world.bob2, world.carol)
            let b = await world.bob.address, c = await carol.address
            let id = try await alice.engine.createGroup(name: "One list", members: [b, c]).id
            for device in world.all { try await device.engine.receivePending() }
            for device in world.all { try await device.engine.receivePending() }   // the copies of what the first round sent
            let epoch = try #require(try alice.store.group(id)).epoch
            for device in world.all {
                #expect(try device.store.group(id)?.epoch == epoch)
                #expect(try await Self.queued(for: device).isEmpty)
            }

            // Two members send and a third commits, all in one epoch: what the relay queued, and for whom.
            _ = try await alice.engine.send(text: "from Alice", toGroup: id)
            _ = try await carol.engine.send(text: "from Carol", toGroup: id)
            _ = try await bob2.engine.updateOwnLeaf(in: id)
            var queuedFor: [[UInt8]: Set<String>] = [:]
            for device in world.all {
                for entry in try await Self.queued(for: device) { queuedFor[entry.message.bytes, default: []].insert(await Self.name(device)) }
            }
            var everyone: Set<String> = []
            for device in world.all { everyone.insert(await Self.name(device)) }
            #expect(queuedFor.count == 3, "two messages and a commit")
            #expect(Set(queuedFor.values) == [everyone], "every one queued for every device, its sender's included")
            for device in world.all { _ = try await device.engine.receivePending() }
            for device in world.all {
                let name = await Self.name(device)
                #expect(try await Self.queued(for: device).isEmpty, "\(name)'s mailbox ends empty")
            }
            #expect(try alice.store.messages(in: .group(id), limit: 100).filter { $0.text == "from Alice" }.count == 1, "filed once")

            // A sender's own copy alone in its mailbox: a message, then a commit, then a request to leave.
            _ = try await alice.engine.send(text: "again", toGroup: id)
            try await Self.expectDroppedUnseen(alice, id, kind: "message")
            for device in [world.bob, bob2, carol] { _ = try await device.engine.receivePending() }
            _ = try await carol.engine.updateOwnLeaf(in: id)
            try await Self.expectDroppedUnseen(carol, id, kind: "commit")
            for device in [alice, world.bob, bob2] { _ = try await device.engine.receivePending() }
            try await carol.engine.leaveGroup(id)
            try await Self.expectDroppedUnseen(carol, id, kind: "message")
            for _ in 0..<2 { for device in world.all { _ = try await device.engine.receivePending() } }
            #expect(try alice.store.group(id)?.members.contains { $0.address == c.description } == false, "Carol's leave was committed")
            for device in world.all {
                #expect(try device.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed }, "nothing unreadable anywhere")
            }
        }
    }

    @Test("the copy of a commit that arrives while the commit is in flight (the relay woke the committer first) is dropped; the commit is saved")
    func commitCopyDuringTheCommit() async throws {
        try await withRelay { relay, directory in
            let hook = CommitHook(inner: try RelayClient(endpoint: try TestDevice.endpoint(for: relay)))
            let (alice, bob, id) = try await GroupPair.make(aliceOn: hook, relay: relay, in: directory, name: "In flight").parts
            let epoch = try #require(try alice.store.group(id)).epoch

            // Between the relay taking the commit and the answer reaching the engine, the engine drains its
            // mailbox (as a push wake-up would make it): the copy is there, at the epoch the state is still in.
            let seen = Seen()
            hook.duringCommit = {
                seen.copies = (try? await GroupOwnCopyEndToEndTests.queued(for: alice)) ?? []
                seen.events = (try? await alice.engine.receivePending()) ?? [.receiveFailed("the drain failed")]
            }
            let saved = try await alice.engine.updateOwnLeaf(in: id)
            hook.duringCommit = nil
            #expect(seen.copies.map(\.kind) == ["commit"] && seen.copies.map(\.epoch) == [epoch], "the copy came during the commit")
            #expect(seen.events.isEmpty, "no event: \(seen.events)")
            #expect(saved.epoch == epoch + 1)
            let record = try #require(try alice.store.group(id))
            #expect(record.active && record.epoch == epoch + 1)
            #expect(try alice.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed && !$0.text.contains("rejoin") })
            #expect(try await Self.queued(for: alice).isEmpty)
            _ = try await alice.engine.send(text: "still here", toGroup: id)
            _ = try await bob.engine.receivePending()
            #expect(try bob.store.messages(in: .group(id), limit: 100).contains { $0.text == "still here" })
        }
    }

    // MARK: Helpers

    /// The device's queued group entries, without acknowledging them.
    static func queued(for device: TestDevice) async throws -> [GroupDelivery] {
        let token = try await device.engine.sessionToken()
        return try await device.engine.relay.fetchWithGroups(limit: 100, after: nil, token: token).messages.compactMap(\.group)
    }

    static func name(_ device: TestDevice) async -> String { await device.deviceAddress.description }

    /// The device's mailbox holds exactly its own copy (of `kind`); a drain stores nothing, says nothing,
    /// leaves the group's state byte for byte as it was, and acknowledges it.
    static func expectDroppedUnseen(_ device: TestDevice, _ id: GroupId, kind: String,
                                    sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await queued(for: device).map(\.kind) == [kind], "the sender's own copy is queued for it", sourceLocation: sourceLocation)
        let state = try device.store.group(id)?.state, history = try device.store.messages(in: .group(id), limit: 1000)
        let events = try await device.engine.receivePending()
        #expect(events.isEmpty, "no event: \(events)", sourceLocation: sourceLocation)
        #expect(try device.store.group(id)?.state == state, "the state as it was", sourceLocation: sourceLocation)
        #expect(try device.store.messages(in: .group(id), limit: 1000) == history, "nothing filed", sourceLocation: sourceLocation)
        #expect(try await queued(for: device).isEmpty, "acknowledged", sourceLocation: sourceLocation)
    }

    static func storageArguments(_ kind: StorageKind) async throws -> [String] {
        guard kind == .postgres else { return [] }
        let cluster = try await PostgresCluster.ready()
        return ["--database", cluster.url(database: try await cluster.newDatabase())]
    }
}

private final class Seen: @unchecked Sendable {
    var copies: [GroupDelivery] = []
    var events: [EngineEvent] = []
}

/// A transport that runs `duringCommit` once the relay has taken a commit and before the answer reaches
/// the engine.
private final class CommitHook: ForwardingTransport, @unchecked Sendable {
    let inner: any RelayTransport
    private let lock = Lock()
    private var hook: (@Sendable () async -> Void)?
    var duringCommit: (@Sendable () async -> Void)? {
        get { lock.withLock { hook } }
        set { lock.withLock { hook = newValue } }
    }

    init(inner: any RelayTransport) { self.inner = inner }

    func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        try await inner.commit(send, toGroup: groupId, secret: secret)
        if let hook = duringCommit { await hook() }
    }
}
