import Foundation
import Logging
@testable import ParleyClient
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import ParleyTestSupport
import PostgresNIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Wake-ups between relay nodes on one PostgreSQL database go only to the node holding the device's push
/// connection (`PostgresWakeBroker`, table `push_connections`).
@Suite("Wake-ups routed to the node holding the device")
struct WakeRoutingTests {
    static let bob = DeviceAddress(address: "bob@relay.test", deviceId: 1)
    static let alice = DeviceAddress(address: "alice@relay.test", deviceId: 1)
    static let list: [UInt8] = [1]

    /// Two nodes in this process: each a storage (its own pool) and a broker, on one fresh database.
    struct Nodes: Sendable {
        let storages: [PostgresRelayStorage]
        let brokers: [PostgresWakeBroker]
        let database: String

        static func start() async throws -> Nodes {
            let cluster = try await PostgresCluster.ready()
            let database = try await cluster.newDatabase()
            let location = try PostgresLocation(url: cluster.url(database: database))
            let storages = (0..<2).map { _ in PostgresRelayStorage(location: location, connections: 4, wakingRecipients: true) }
            try await storages[0].migrate()
            var brokers: [PostgresWakeBroker] = []
            for storage in storages {
                let broker = PostgresWakeBroker(client: storage.client, logger: Logger(label: "test.wake"))
                await broker.start()
                brokers.append(broker)
            }
            for device in [WakeRoutingTests.bob, WakeRoutingTests.alice] {
                _ = try await storages[0].createAccount(address: device.address, accountKey: [1], deviceList: WakeRoutingTests.list)
            }
            return Nodes(storages: storages, brokers: brokers, database: database)
        }

        func stop() async {
            for broker in brokers { await broker.stop() }
            for storage in storages { storage.close() }
        }

        func send(to device: DeviceAddress, through node: Int) async throws {
            let result = try await storages[node].enqueue([(device.deviceId, [7])], for: device.address, ifDeviceList: WakeRoutingTests.list,
                                                          now: 1, expiresAt: 1 << 40, mailboxLimit: 100)
            #expect(result == .stored)
        }
    }

    @Test("a send through node A for a device held by node B is notified to B alone; A hears only of its own device")
    func notifiedOnlyToHoldingNode() async throws {
        let nodes = try await Nodes.start()
        let (bobWakes, aliceWakes, bobEnded) = (Counter(), Counter(), Counter())
        await nodes.brokers[1].subscribe(Self.bob, id: 1, wake: { _ = bobWakes.next() }, end: { _ in _ = bobEnded.next() })
        await nodes.brokers[0].subscribe(Self.alice, id: 2, wake: { _ = aliceWakes.next() }, end: { _ in })

        try await nodes.send(to: Self.bob, through: 0)
        try await eventually("bob's connection on B to be woken", timeout: .seconds(30)) { bobWakes.value == 1 }
        // Alice's wake-up is committed after bob's, and one connection reads its notifications in commit
        // order: once A has alice's, it has every earlier one meant for it.
        try await nodes.send(to: Self.alice, through: 0)
        try await eventually("alice's connection on A to be woken", timeout: .seconds(30)) { aliceWakes.value == 1 }
        #expect(nodes.brokers[0].notificationsReceived == 1)
        #expect(nodes.brokers[1].notificationsReceived == 1)

        // A wake-up outside a send (a group message, prekeys running low) and a revocation go the same way.
        await nodes.brokers[0].wake([Self.bob])
        try await eventually("bob's connection on B to be woken again", timeout: .seconds(30)) { bobWakes.value == 2 }
        await nodes.brokers[0].revoke([Self.bob])
        try await eventually("bob's connection on B to end", timeout: .seconds(30)) { bobEnded.value == 1 }
        try await nodes.send(to: Self.alice, through: 1)
        try await eventually("alice's connection on A to be woken again", timeout: .seconds(30)) { aliceWakes.value == 2 }
        #expect(nodes.brokers[0].notificationsReceived == 2)
        #expect(nodes.brokers[1].notificationsReceived == 3)
        await nodes.stop()
    }

    @Test("a push connection registering while a send to its device is being committed returns only after that commit")
    func registrationWaitsForSendInFlight() async throws {
        let nodes = try await Nodes.start()
        let subscribed = Counter()
        let committing = Counter()
        let sawCommit = Counter()
        // A send in flight: the account row locked as `parley_enqueue_v3` locks it, its message inserted,
        // not committed yet. Its NOTIFY read no row for bob (he had none yet).
        try await nodes.storages[0].transaction { connection in
            try await connection.query("SELECT 1 FROM accounts WHERE address = \(Self.bob.address) FOR UPDATE", logger: Logger(label: "test"))
            try await connection.query("""
                INSERT INTO messages (address, device_id, envelope, received_at, expires_at) VALUES (\(Self.bob.address), 1, '\\x07', 1, \(Int64(1) << 40))
                """, logger: Logger(label: "test"))
            Task {
                await nodes.brokers[1].subscribe(Self.bob, id: 1, wake: {}, end: { _ in })
                if committing.value > 0 { _ = sawCommit.next() }
                _ = subscribed.next()
            }
            // Time for the registration to reach the lock (were it not waiting, it would be done by then).
            try await Task.sleep(for: .milliseconds(500))
            _ = committing.next()
        }
        try await eventually("the registration to return", timeout: .seconds(30)) { subscribed.value == 1 }
        // Its first fetch (the route's first `wake` follows `subscribe`) therefore finds the message.
        #expect(sawCommit.value == 1)
        #expect(try await nodes.storages[1].fetch(for: Self.bob, now: 2, limit: 10, after: 0).messages.count == 1)
        await nodes.stop()
    }

    @Test("a node SIGKILLed while holding a push connection: once restarted its stale rows are gone; the device reconnecting to it, or to another node, is woken")
    func killedNodeLosesNoWake() async throws {
        try await SharedDatabaseTests().withNodes(2) { nodes, directory in
            let database = try PostgresLocation(url: nodes[0].database).database
            let cluster = try await PostgresCluster.ready()
            @Sendable func rows() throws -> Int {
                Int(try cluster.psql("SELECT count(*) FROM push_connections", database: database).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            }
            let a = RawHTTP(baseURL: nodes[0].baseURL)
            let bob = try await RawAccount.register("bob", via: a)
            let token = try await bob.token(via: a)

            // Bob's push connection on B; its first wake comes once it is registered.
            let first = try await Self.connect(to: nodes[1], token: token)
            #expect(try rows() == 1)
            nodes[1].kill(SIGKILL)
            try await eventually("the killed node's push connection to close", timeout: .seconds(30)) { first.recorder.isClosed }

            // B again (a new process): the killed one's row goes at its start (its listening connection's
            // sweep, or its first purge).
            let restarted = try await nodes[1].restarted(directory: directory)
            defer { restarted.kill() }
            try await eventually("the killed node's row to be swept", timeout: .seconds(90)) { try rows() == 0 }
            let second = try await Self.connect(to: restarted, token: token)
            #expect(try rows() == 1)
            let before = second.recorder.wakes
            try await bob.receive([1], via: a)
            try await eventually("bob's push connection on the restarted node to be woken", timeout: .seconds(30)) { second.recorder.wakes > before }

            // B killed again, and bob reconnects to A: B's stale row (until a sweep) costs nothing.
            restarted.kill(SIGKILL)
            try await eventually("the killed node's push connection to close", timeout: .seconds(30)) { second.recorder.isClosed }
            let third = try await Self.connect(to: nodes[0], token: token)
            let woken = third.recorder.wakes
            try await bob.receive([2], via: a)
            try await eventually("bob's push connection on A to be woken", timeout: .seconds(30)) { third.recorder.wakes > woken }
            #expect(try await a.mailbox(token: token).map(\.envelope.bytes) == [[1], [2]])
            for connection in [first, second, third] { connection.listener.cancel() }
        }
    }

    /// A push connection to `node`, once its first wake (sent after it is registered) arrived.
    static func connect(to node: RelayNode, token: String) async throws -> (recorder: PushRecorder, listener: Task<Void, Never>) {
        let recorder = PushRecorder()
        let listener = Task {
            do {
                try await PushSocket.run(url: "ws://127.0.0.1:\(node.port)/v1/push", authorization: "Bearer " + token, tls: nil) { text in
                    recorder.record(text)
                }
            } catch {}
            recorder.closed()
        }
        try await eventually("the push connection to node \(node.index) to open", timeout: .seconds(30)) { recorder.wakes > 0 }
        return (recorder, listener)
    }
}
