import Logging
import NIOConcurrencyHelpers
import NIOCore
import ParleyProtocol
import PostgresNIO

/// Wake-ups across relay nodes that share one PostgreSQL database. Each node LISTENs on a channel of its
/// own, and a wake-up or a revocation is NOTIFYed only on the channels of the nodes that hold a push
/// connection of the device: table `push_connections` (device key → node), written when a push
/// connection opens (before its first `wake`) and when it closes. A send's wake-ups go from inside the
/// statement that stores it (`PostgresRelayStorage.enqueue`); the other wake-ups and revocations are one
/// statement that reads the table and notifies. A notification carries only an opaque device key (a
/// hash of the device's address: nothing about the sender, the message or, to someone reading the
/// channel or the table, the account: a `WakeKey`) and one letter for what to do.
///
/// A node is a random number, drawn anew each time its listening connection starts; that connection
/// holds a session advisory lock on the number for as long as it lives. A node that was killed (SIGKILL,
/// a lost machine) or whose listening connection broke lets go of the lock with its connection, and its
/// rows are stale: a node that starts listening deletes the rows of every node whose lock is free, and so
/// does every node's purge (once a minute). A stale row costs a NOTIFY nobody reads, never a lost wake-up:
/// the device's new push connection has a row of its own.
///
/// A registration takes the device's account row with FOR KEY SHARE, which waits for a send to it that
/// holds the row's lock (`parley_enqueue_v3` takes it FOR UPDATE first): a send either commits before the
/// registration, and the device's first fetch finds it, or reads the registered row and notifies.
///
/// While the listening connection is down (the database restarting) notifications are lost; once it is
/// back (as a new node number) every push connection of this node is registered again and woken, and its
/// device fetches whatever arrived meanwhile. A newer push connection of a device displaces an older one
/// on the same node only: a device connected to two nodes at once is woken on both.
public actor PostgresWakeBroker: WakeBroker {
    /// A node's channel is this and its number in hex (`channel(of:)`); `parley_enqueue_v3` spells it too.
    static let channelPrefix = "parley_wake_"

    static func channel(of node: Int64) -> String { channelPrefix + String(node, radix: 16) }

    private struct Subscriber: Sendable {
        let device: DeviceAddress
        let id: UInt64
        let wake: @Sendable () -> Void
        let end: @Sendable (PushEnd) -> Void
    }
    /// Read by the listening connection's event loop as well as by this actor.
    private nonisolated let subscribers = NIOLockedValueBox<[WakeKey: Subscriber]>([:])
    private nonisolated let notifications = NIOLockedValueBox(0)
    private let client: PostgresClient
    private let logger: Logger
    private var listener: Task<Void, Never>?
    /// The number this node goes by while its listening connection is up.
    private var node: Int64?
    private var listeningWaiters: [CheckedContinuation<Void, Never>] = []
    private var retryingRegistration = false

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Notifications this node received (on its own channel).
    nonisolated var notificationsReceived: Int { notifications.withLockedValue { $0 } }

    /// Starts listening; returns once the first LISTEN is in place and registered (or the task is cancelled).
    public func start() async {
        guard listener == nil else { return }
        listener = Task { await self.listen() }
        if node == nil { await withCheckedContinuation { listeningWaiters.append($0) } }
    }

    /// Stops listening; this node's rows go with it (a node that is killed leaves them to the sweep).
    public func stop() async {
        if let node { _ = try? await client.query("DELETE FROM push_connections WHERE node = \(node)", logger: logger) }
        listener?.cancel()
        listener = nil
    }

    // MARK: WakeBroker

    /// Registers the connection before returning (unless the listening connection is down: then its
    /// return registers it), so that the route's first `wake` comes after any send it must see.
    public func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                          end: @escaping @Sendable (PushEnd) -> Void) async {
        let key = WakeKey(device)
        let displaced = subscribers.withLockedValue { subscribers in
            defer { subscribers[key] = Subscriber(device: device, id: id, wake: wake, end: end) }
            return subscribers[key]
        }
        displaced?.end(.displaced)
        guard let node else { return }
        do {
            try await client.query(Self.register([(key, device, id)], node: node), logger: logger)
        } catch {
            registrationFailed(error)
        }
    }

    /// Deletes the connection's row (a displaced connection's row already names its successor).
    public func unsubscribe(_ device: DeviceAddress, id: UInt64) async {
        let key = WakeKey(device)
        subscribers.withLockedValue { subscribers in
            if subscribers[key]?.id == id { subscribers[key] = nil }
        }
        guard let node else { return }
        let (hex, connection) = (key.hex, Int64(truncatingIfNeeded: id))
        do {
            try await client.query("DELETE FROM push_connections WHERE wake_key = \(hex) AND node = \(node) AND connection = \(connection)",
                                   logger: logger)
        } catch {
            // Left behind, the row makes a NOTIFY this node ignores, until the node's rows are swept.
            logger.debug("wake-ups: cannot delete a closed push connection's row (\(String(describing: error).prefix(200)))")
        }
    }

    /// Wakes this node's own connections at once and notifies the other nodes holding one.
    public func wake(_ devices: [DeviceAddress]) async {
        let keys = Set(devices.map { WakeKey($0) })
        for key in keys { subscribers.withLockedValue { $0[key] }?.wake() }
        await notify("w", keys)
    }

    /// Ends the devices' push connections here at once, and on every other node holding one.
    public func revoke(_ devices: [DeviceAddress]) async {
        let keys = Set(devices.map { WakeKey($0) })
        for key in keys { remove(key)?.end(.revoked) }
        await notify("r", keys)
    }

    private nonisolated func remove(_ key: WakeKey) -> Subscriber? {
        subscribers.withLockedValue { $0.removeValue(forKey: key) }
    }

    /// One statement: a NOTIFY on the channel of each other node with a row for one of `keys`.
    private func notify(_ action: String, _ keys: Set<WakeKey>) async {
        guard !keys.isEmpty else { return }
        let hex = keys.map(\.hex)
        let me = node ?? 0   // not listening: every node with a row, none is this one's
        do {
            try await client.query("""
                SELECT pg_notify(\(Self.channelPrefix) || to_hex(node), \(action) || wake_key) FROM push_connections
                WHERE wake_key = ANY(\(hex)::text[]) AND node <> \(me)
                """, logger: logger)
        } catch {
            // The envelope is stored; this node's own connections were woken.
            logger.warning("wake-ups: cannot notify other nodes (\(String(describing: error).prefix(200)))")
        }
    }

    /// Acts on one notification (on the listening connection's event loop).
    private nonisolated func deliver(_ payload: String) {
        notifications.withLockedValue { $0 += 1 }
        guard let action = payload.first, let key = WakeKey(hex: payload.dropFirst()) else { return }
        switch action {
        case "w": subscribers.withLockedValue { $0[key] }?.wake()
        case "r": remove(key)?.end(.revoked)
        default: break
        }
    }

    // MARK: Rows

    /// Inserts the connections' rows under `node`, each account's row held FOR KEY SHARE meanwhile (see the
    /// type's comment); a row already there keeps the newer connection's id (ids grow on a node).
    static func register(_ entries: [(key: WakeKey, device: DeviceAddress, id: UInt64)], node: Int64) -> PostgresQuery {
        let keys = entries.map { $0.key.hex }
        let ids = entries.map { Int64(truncatingIfNeeded: $0.id) }
        let addresses = Set(entries.map { $0.device.address }).sorted()
        return """
            WITH locked AS MATERIALIZED (SELECT 1 FROM accounts WHERE address = ANY(\(addresses)::text[]) ORDER BY address FOR KEY SHARE)
            INSERT INTO push_connections (wake_key, node, connection)
            SELECT k, \(node), c FROM unnest(\(keys)::text[], \(ids)::bigint[]) AS t(k, c) WHERE (SELECT count(*) FROM locked) >= 0
            ON CONFLICT (wake_key, node) DO UPDATE SET connection = excluded.connection WHERE push_connections.connection < excluded.connection
            """
    }

    /// Deletes the rows of every node other than `node` whose listening connection is gone (its advisory
    /// lock is free: taking it for this transaction succeeds).
    static func sweep(keeping node: Int64) -> PostgresQuery {
        """
        DELETE FROM push_connections WHERE node IN (
          SELECT n FROM (SELECT DISTINCT node AS n FROM push_connections WHERE node <> \(node)) AS d WHERE pg_try_advisory_xact_lock(n))
        """
    }

    private var registrations: [(key: WakeKey, device: DeviceAddress, id: UInt64)] {
        subscribers.withLockedValue { subscribers in subscribers.map { (key: $0.key, device: $0.value.device, id: $0.value.id) } }
    }

    /// A connection left without a row would miss its wake-ups: every row is written again a second later
    /// (until that succeeds), and every connection woken then.
    private func registrationFailed(_ error: any Error) {
        logger.warning("wake-ups: cannot register a push connection (\(String(describing: error).prefix(200))); retrying")
        guard !retryingRegistration else { return }
        retryingRegistration = true
        Task {
            try? await Task.sleep(for: .seconds(1))
            await self.registerAgain()
        }
    }

    private func registerAgain() async {
        retryingRegistration = false
        guard let node else { return }   // the next listening connection registers them all
        let entries = registrations
        guard !entries.isEmpty else { return }
        do {
            try await client.query(Self.register(entries, node: node), logger: logger)
            for entry in entries { subscribers.withLockedValue { $0[entry.key] }?.wake() }
        } catch {
            registrationFailed(error)
        }
    }

    // MARK: Listening

    /// A new listening connection is in place as `node`: stale rows go, this node's connections are
    /// registered under it, and (`again`: notifications may have been lost meanwhile) woken.
    private func began(_ node: Int64, on connection: PostgresConnection, again: Bool) async throws {
        self.node = node
        try await connection.query(Self.sweep(keeping: node), logger: logger)
        let entries = registrations
        if !entries.isEmpty { try await connection.query(Self.register(entries, node: node), logger: logger) }
        for waiter in listeningWaiters { waiter.resume() }
        listeningWaiters = []
        if again { for subscriber in subscribers.withLockedValue({ Array($0.values) }) { subscriber.wake() } }
    }

    private func lost() { node = nil }

    private func stopped() {
        for waiter in listeningWaiters { waiter.resume() }   // nobody waits for a broker that stopped
        listeningWaiters = []
    }

    /// Holds one connection of the pool in LISTEN, with its node's lock, for as long as the broker runs,
    /// and takes another (as a new node) when it breaks. The LISTEN is in place once a statement sent after
    /// it is answered (a connection runs its commands in order).
    private nonisolated func listen() async {
        var first = true
        while !Task.isCancelled {
            let node = Int64.random(in: 1...Int64.max)
            do {
                try await client.withConnection { connection in
                    do {
                        try await connection.query("SELECT pg_advisory_lock(\(node))", logger: logger)
                        let context = connection.addListener(channel: Self.channel(of: node)) { [weak self] _, notification in
                            self?.deliver(notification.payload)
                        }
                        defer { context.stop() }
                        try await connection.query("SELECT 1", logger: logger)
                        try await self.began(node, on: connection, again: !first)
                        first = false
                        try await withTaskCancellationHandler {
                            try await connection.closeFuture.get()
                        } onCancel: {
                            let _: EventLoopFuture<Void> = connection.close()
                        }
                    } catch {
                        // Not back into the pool with this node's lock and LISTEN.
                        let _: EventLoopFuture<Void> = connection.close()
                        throw error
                    }
                }
            } catch {
                if !Task.isCancelled { logger.warning("wake-ups: listening connection lost (\(String(describing: error).prefix(200))); retrying") }
            }
            await lost()
            try? await Task.sleep(for: .milliseconds(250))
        }
        await stopped()
    }
}
