import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ParleyProtocol
import PostgresNIO

/// The storage of relay nodes that share one PostgreSQL database (`parley-relay serve --database`).
/// It stores only; the rules are `RelayCore`'s, and where one must hold against concurrent requests from
/// several nodes the write is conditional and made in one transaction (see `RelayStorage`).
///
/// The pool is PostgresNIO's `PostgresClient`; its `run()` goes on in a task of this object's own until
/// `close()`. Ids of queued envelopes come from one sequence and, for one account, are taken under the
/// account row's lock, so they grow in the order they are committed and a client paging with `after` never
/// skips one stored meanwhile.
public final class PostgresRelayStorage: RelayStorage {
    public let client: PostgresClient
    let location: PostgresLocation
    let leaseTimeout: Duration
    /// A send's NOTIFY goes with its commit, to the nodes holding the recipients (see `enqueue`), which
    /// LISTEN through `PostgresWakeBroker`.
    public let wakesRecipientsOnEnqueue: Bool
    let logger: Logger
    /// When a request last met the database's absence.
    private let lastFailure = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let runner: Task<Void, Never>
    private let leases = PostgresLeaseWatch()

    /// `connections`: the most the pool opens (PostgreSQL's max_connections is shared by all nodes).
    /// `leaseTimeout`: how long a request waits for one of them before it is answered 503 (see
    /// `withConnection`). `wakingRecipients`: a send's enqueue also sends the wake-up the nodes'
    /// `PostgresWakeBroker`s listen for, in the same statement.
    public init(location: PostgresLocation, connections: Int = 16, leaseTimeout: Duration = PostgresRelayStorage.leaseTimeout,
                wakingRecipients: Bool = false, logger: Logger = Logger(label: "parley-relay.postgres")) {
        var configuration = location.clientConfiguration
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = connections
        // The pool arms timers on every connection it takes back (the idle timeout of a connection beyond
        // the minimum, and the keep-alive ping) and cancels them when it lends it again: three tasks and a
        // dispatch timer each, per statement. The first few connections, which it lends first, stay open
        // once made, so no idle timer is armed for them. Over TCP the ping stays (a firewall that drops
        // quiet connections would leave a statement waiting on a dead one for minutes); a Unix socket has
        // nothing between the node and the server, and a server that goes away closes it at once.
        configuration.options.minimumConnections = min(Self.warmConnections, connections - 1)
        if location.socketDirectory != nil { configuration.options.keepAliveBehavior = nil }
        // The pool's own background lines (a lease asked for before its run loop started, a connection
        // that failed while the database restarts) are not the operator's news: requests say it (503).
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        self.client = client
        self.leaseTimeout = leaseTimeout
        wakesRecipientsOnEnqueue = wakingRecipients
        self.location = location
        self.logger = logger
        runner = Task { await client.run() }
    }

    /// Ends the pool (its connections close).
    public func close() {
        runner.cancel()
    }

    deinit { runner.cancel() }

    // MARK: Schema

    /// The schema's versions: migration N (1-based) takes the schema from version N−1 to N. Only ever
    /// appended to.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE accounts (address TEXT PRIMARY KEY, account_key BYTEA NOT NULL, device_list BYTEA NOT NULL, access_verifier BYTEA)",
            "CREATE TABLE challenges (challenge BYTEA PRIMARY KEY, address TEXT NOT NULL, device_id BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
            "CREATE INDEX challenges_by_expiry ON challenges (expires_at)",
            "CREATE TABLE tokens (hash BYTEA PRIMARY KEY, address TEXT NOT NULL, device_id BIGINT NOT NULL, expires_at BIGINT NOT NULL)",
            "CREATE INDEX tokens_by_device ON tokens (address, device_id)",
            """
            CREATE TABLE signed_prekeys (address TEXT NOT NULL, device_id BIGINT NOT NULL, kind TEXT NOT NULL, key_id BIGINT NOT NULL,
              key BYTEA NOT NULL, signature BYTEA NOT NULL, PRIMARY KEY (address, device_id, kind))
            """,
            """
            CREATE TABLE one_time_prekeys (address TEXT NOT NULL, device_id BIGINT NOT NULL, kind TEXT NOT NULL, key_id BIGINT NOT NULL,
              key BYTEA NOT NULL, signature BYTEA, PRIMARY KEY (address, device_id, kind, key_id))
            """,
            """
            CREATE TABLE messages (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, address TEXT NOT NULL, device_id BIGINT NOT NULL,
              envelope BYTEA NOT NULL, received_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
            """,
            "CREATE INDEX messages_by_device ON messages (address, device_id, id)",
            "CREATE INDEX messages_by_expiry ON messages (expires_at)",
            "CREATE TABLE provisioning (id TEXT PRIMARY KEY, message BYTEA, expires_at BIGINT NOT NULL)",
            """
            CREATE TABLE attachments (id TEXT PRIMARY KEY, upload_hash BYTEA, size BIGINT NOT NULL, complete BOOLEAN NOT NULL DEFAULT false,
              expires_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE attachment_quota (address TEXT NOT NULL, period BIGINT NOT NULL, bytes BIGINT NOT NULL, slots BIGINT NOT NULL,
              PRIMARY KEY (address, period))
            """,
        ],
        // MLS delivery (PROTOCOL.md §17): see SQLiteRelayStorage's migration "v6 groups".
        [
            """
            CREATE TABLE key_packages (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, address TEXT NOT NULL, device_id BIGINT NOT NULL,
              package BYTEA NOT NULL)
            """,
            "CREATE INDEX key_packages_by_device ON key_packages (address, device_id, id)",
            """
            CREATE TABLE last_resort_key_packages (address TEXT NOT NULL, device_id BIGINT NOT NULL, package BYTEA NOT NULL,
              PRIMARY KEY (address, device_id))
            """,
            "CREATE TABLE mls_groups (id BYTEA PRIMARY KEY, epoch BIGINT NOT NULL, verifier BYTEA NOT NULL)",
            """
            CREATE TABLE group_messages (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, group_id BYTEA NOT NULL, epoch BIGINT NOT NULL,
              is_commit BOOLEAN NOT NULL, body BYTEA NOT NULL, expires_at BIGINT NOT NULL)
            """,
            "CREATE INDEX group_messages_by_expiry ON group_messages (expires_at)",
            "ALTER TABLE messages ADD COLUMN group_message BIGINT",
            "CREATE INDEX messages_by_group_message ON messages (group_message) WHERE group_message IS NOT NULL",
        ],
        // The old account key's statement naming the new one (PROTOCOL.md §3.5).
        ["ALTER TABLE accounts ADD COLUMN key_change BYTEA"],
        // A send in one round trip: see `enqueue`.
        [enqueueFunction],
        // The GroupInfo of each group's current epoch (PROTOCOL.md §17.9): see SQLiteRelayStorage's "v8 group infos".
        [
            """
            CREATE TABLE mls_group_infos (group_id BYTEA PRIMARY KEY, epoch BIGINT NOT NULL, group_info BYTEA NOT NULL,
              rejoiners BYTEA NOT NULL)
            """,
        ],
        // Wake-ups routed to the node holding the device's push connection: see `PostgresWakeBroker`.
        [
            "CREATE TABLE push_connections (wake_key TEXT NOT NULL, node BIGINT NOT NULL, connection BIGINT NOT NULL, PRIMARY KEY (wake_key, node))",
            "CREATE INDEX push_connections_by_node ON push_connections (node)",
            enqueueFunction2,
        ],
        // The send's function keeps one plan of each of its statements: see `enqueueFunction3`.
        [enqueueFunction3],
    ]

    /// The schema version this build knows.
    public static var schemaVersion: Int { migrations.count }

    /// The advisory lock key under which nodes migrate (an arbitrary constant: "parley" in ASCII).
    static let migrationLock: Int64 = 0x7061_726c_6579

    /// One connection made outside the pool, for the start-up check: the pool retries a failing connection
    /// quietly, where this says why it failed (no such database, authentication, no server at the address).
    public func checkConnection() async throws {
        let configuration: PostgresConnection.Configuration
        if let directory = location.socketDirectory {
            configuration = .init(unixSocketPath: directory + "/.s.PGSQL.\(location.port)", username: location.user, password: location.password,
                                  database: location.database)
        } else {
            configuration = .init(host: location.host ?? "127.0.0.1", port: location.port, username: location.user, password: location.password,
                                  database: location.database, tls: location.requireTLS ? .require(try .init(configuration: .makeClientConfiguration())) : .disable)
        }
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        try await connection.close()
    }

    /// Brings the schema to `schemaVersion`. Nodes starting together take the advisory lock in turn: the
    /// first migrates, the others find the work done. A schema newer than this build knows is refused
    /// (a node of an older release must not write to tables it does not understand).
    public func migrate() async throws {
        try await transaction { [logger] connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS parley_schema (version INTEGER NOT NULL)", logger: logger)
            let rows = try await connection.query("SELECT version FROM parley_schema", logger: logger).collect()
            var version = 0
            if let row = rows.first {
                version = Int(try row.decode(Int32.self))
            } else {
                try await connection.query("INSERT INTO parley_schema (version) VALUES (0)", logger: logger)
            }
            guard version <= Self.schemaVersion else { throw PostgresSchemaError.newer(found: version, known: Self.schemaVersion) }
            for migration in Self.migrations.dropFirst(version) {
                for statement in migration { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
            }
            let known = Int32(Self.schemaVersion)
            try await connection.query("UPDATE parley_schema SET version = \(known)", logger: logger)
        }
    }

    /// How long a request waits for a connection of the pool. The pool never fails a waiting lease by itself:
    /// while the database is away, requests would hang; after this they answer 503 instead. The wait is
    /// short once the database was seen failing (within `failureMemory`), so that clients hear 503 soon
    /// during an outage; otherwise long, so that a busy machine making new connections slowly is not taken
    /// for an outage (the full test suite on two cores took over 3 s to connect).
    public static let leaseTimeout = Duration.seconds(20)
    /// Connections the pool keeps open once made, idle or not (no idle timer is armed for them).
    static let warmConnections = 4
    static let leaseTimeoutAfterFailure = Duration.seconds(2)
    static let failureMemory = Duration.seconds(30)

    /// Runs `body` on a connection of the pool, or throws `DatabaseUnreachable` when none could be had in
    /// `leaseTimeout`. Only the wait for a connection is bounded, not `body`: a statement that has begun
    /// is never abandoned half way (its outcome would be unknown to the caller).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await leasing(body)
        } catch {
            if Self.fault(of: error) != nil { lastFailure.withLockedValue { $0 = .now } }
            throw error
        }
    }

    /// The wait is bounded by `leases` (one watch for all requests, no timer of each): the lease and `body`
    /// run in a task of their own, which the watch cancels while it still waits for a connection.
    private func leasing<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, leases) = (client, leases)
        let timeout = lastFailure.withLockedValue { last in last.map { .now - $0 < Self.failureMemory } ?? false }
            ? min(Self.leaseTimeoutAfterFailure, leaseTimeout) : leaseTimeout
        let ticket = leases.begin(deadline: .now + timeout)
        let work = Task {
            try await client.withConnection { connection in
                guard leases.leased(ticket) else { throw DatabaseUnreachable(waited: timeout) }
                return try await body(connection)
            }
        }
        leases.attach(ticket) { work.cancel() }
        do {
            let value = try await withTaskCancellationHandler { try await work.value } onCancel: { work.cancel() }
            _ = leases.end(ticket)
            return value
        } catch {
            if leases.end(ticket) { throw DatabaseUnreachable(waited: timeout) }
            throw error
        }
    }

    /// Runs `body` in a transaction, rolled back if it throws; the error thrown is `body`'s own (PostgresNIO's
    /// `withTransaction` would wrap it).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return value
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let logger = logger
        return try await withConnection { connection in try await connection.query(query, logger: logger).collect() }
    }

    private func execute(_ query: PostgresQuery) async throws {
        _ = try await rows(query)
    }

    static func bytea(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }
    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }
    /// Where the per-device lock key of prekey uploads comes from.
    private static func deviceKey(_ device: DeviceAddress) -> String { device.address + "#" + String(device.deviceId) }

    // MARK: Accounts

    public func createAccount(address: String, accountKey: [UInt8], deviceList: [UInt8]) async throws -> Bool {
        let (key, list) = (Self.bytea(accountKey), Self.bytea(deviceList))
        return try await !rows("""
            INSERT INTO accounts (address, account_key, device_list) VALUES (\(address), \(key), \(list))
            ON CONFLICT (address) DO NOTHING RETURNING 1
            """).isEmpty
    }

    public func account(_ address: String) async throws -> StoredAccount? {
        guard let row = try await rows("SELECT account_key, device_list FROM accounts WHERE address = \(address)").first else { return nil }
        let (key, list) = try row.decode((ByteBuffer, ByteBuffer).self)
        return StoredAccount(accountKey: Self.bytes(key), deviceList: Self.bytes(list))
    }

    public func replaceDeviceList(address: String, replacing current: [UInt8], with list: [UInt8], wiping: [UInt32]) async throws -> Bool {
        let (old, new) = (Self.bytea(current), Self.bytea(list))
        return try await transaction { [logger] connection in
            guard try await !connection.query("""
                UPDATE accounts SET device_list = \(new) WHERE address = \(address) AND device_list = \(old) RETURNING 1
                """, logger: logger).collect().isEmpty else { return false }
            try await Self.wipe(wiping, of: address, connection, logger: logger)
            return true
        }
    }

    public func replaceAccountKey(address: String, replacing current: [UInt8], accountKey: [UInt8], deviceList: [UInt8],
                                  keyChange: [UInt8], wiping: [UInt32]) async throws -> Bool {
        let (old, new, key, change) = (Self.bytea(current), Self.bytea(deviceList), Self.bytea(accountKey), Self.bytea(keyChange))
        return try await transaction { [logger] connection in
            guard try await !connection.query("""
                UPDATE accounts SET account_key = \(key), device_list = \(new), key_change = \(change)
                WHERE address = \(address) AND device_list = \(old) RETURNING 1
                """, logger: logger).collect().isEmpty else { return false }
            try await Self.wipe(wiping, of: address, connection, logger: logger)
            return true
        }
    }

    public func accountKeyChange(of address: String) async throws -> [UInt8]? {
        guard let row = try await rows("SELECT key_change FROM accounts WHERE address = \(address)").first else { return nil }
        return try row.decode(ByteBuffer?.self).map(Self.bytes)
    }

    /// Deletes the tokens, prekeys and queued mail of `devices` (they left the list, or got a new key).
    private static func wipe(_ devices: [UInt32], of address: String, _ connection: PostgresConnection, logger: Logger) async throws {
        let wiped = devices.map(Int64.init)
        guard !wiped.isEmpty else { return }
        try await connection.query("DELETE FROM tokens WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
        try await connection.query("DELETE FROM signed_prekeys WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
        try await connection.query("DELETE FROM one_time_prekeys WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
        try await connection.query("DELETE FROM messages WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
        try await connection.query("DELETE FROM key_packages WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
        try await connection.query("DELETE FROM last_resort_key_packages WHERE address = \(address) AND device_id = ANY(\(wiped))", logger: logger)
    }

    /// One read for a send: the account and its verifier.
    public func accountForDelivery(_ address: String) async throws -> (account: StoredAccount, verifier: [UInt8]?)? {
        guard let row = try await run(AccountForDeliveryStatement(address: address)).first else { return nil }
        let (key, list, verifier) = row
        return (StoredAccount(accountKey: Self.bytes(key), deviceList: Self.bytes(list)), verifier.map(Self.bytes))
    }

    public func deliveryAccessVerifier(of address: String) async throws -> [UInt8]? {
        guard let row = try await rows("SELECT access_verifier FROM accounts WHERE address = \(address)").first else { return nil }
        return try row.decode(ByteBuffer?.self).map(Self.bytes)
    }

    public func setDeliveryAccessVerifier(_ verifier: [UInt8], for address: String) async throws {
        let value = Self.bytea(verifier)
        try await execute("UPDATE accounts SET access_verifier = \(value) WHERE address = \(address)")
    }

    // MARK: Authentication

    public func storeChallenge(_ challenge: [UInt8], address: String, deviceId: UInt32, expiresAt: UInt64) async throws {
        let (value, id, expires) = (Self.bytea(challenge), Int64(deviceId), Int64(expiresAt))
        try await execute("""
            INSERT INTO challenges (challenge, address, device_id, expires_at) VALUES (\(value), \(address), \(id), \(expires))
            """)
    }

    /// One DELETE … RETURNING: of two nodes taking the same challenge at once, exactly one gets it.
    public func takeChallenge(_ challenge: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        let value = Self.bytea(challenge)
        guard let row = try await rows("DELETE FROM challenges WHERE challenge = \(value) RETURNING address, device_id, expires_at").first else {
            return nil
        }
        let (address, deviceId, expiresAt) = try row.decode((String, Int64, Int64).self)
        guard expiresAt > Int64(now) else { return nil }
        return DeviceAddress(address: address, deviceId: UInt32(deviceId))
    }

    public func storeToken(hash: [UInt8], device: DeviceAddress, expiresAt: UInt64) async throws {
        let (value, id, expires) = (Self.bytea(hash), Int64(device.deviceId), Int64(expiresAt))
        try await execute("""
            INSERT INTO tokens (hash, address, device_id, expires_at) VALUES (\(value), \(device.address), \(id), \(expires))
            """)
    }

    public func device(forTokenHash hash: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        guard let row = try await run(TokenOwnerStatement(hash: Self.bytea(hash), now: Int64(now))).first else { return nil }
        let (address, deviceId) = row
        return DeviceAddress(address: address, deviceId: UInt32(deviceId))
    }

    public func revokeTokens(of device: DeviceAddress) async throws {
        let id = Int64(device.deviceId)
        try await execute("DELETE FROM tokens WHERE address = \(device.address) AND device_id = \(id)")
    }

    // MARK: Prekeys

    public func storePreKeys(for device: DeviceAddress, signed: StoredSignedKey?, lastResort: StoredSignedKey?,
                             oneTime: [StoredSignedKey], oneTimePQ: [StoredSignedKey], limit: Int) async throws -> Bool {
        struct OverLimit: Error {}
        let (address, id, lockKey) = (device.address, Int64(device.deviceId), Self.deviceKey(device))
        do {
            try await transaction { [logger] connection in
                // Uploads of one device take turns, so that two cannot pass the limit together.
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
                for (kind, key) in [("spk", signed), ("pqlr", lastResort)] {
                    guard let key else { continue }
                    let (keyId, value, signature) = (Int64(key.id), Self.bytea(key.key), Self.bytea(key.signature))
                    try await connection.query("""
                        INSERT INTO signed_prekeys (address, device_id, kind, key_id, key, signature)
                        VALUES (\(address), \(id), \(kind), \(keyId), \(value), \(signature))
                        ON CONFLICT (address, device_id, kind) DO UPDATE SET key_id = excluded.key_id, key = excluded.key, signature = excluded.signature
                        """, logger: logger)
                }
                for (kind, keys) in [("ec", oneTime), ("pq", oneTimePQ)] where !keys.isEmpty {
                    let ids = keys.map { Int64($0.id) }
                    let values = keys.map { Self.bytea($0.key) }
                    let signatures = keys.map { Self.bytea($0.signature) }   // empty: none (stored as NULL)
                    try await connection.query("""
                        INSERT INTO one_time_prekeys (address, device_id, kind, key_id, key, signature)
                        SELECT DISTINCT ON (k) \(address), \(id), \(kind), k, v, NULLIF(s, ''::bytea) FROM unnest(\(ids)::bigint[], \(values)::bytea[], \(signatures)::bytea[])
                          WITH ORDINALITY AS t(k, v, s, n) ORDER BY k, n DESC
                        ON CONFLICT (address, device_id, kind, key_id) DO UPDATE SET key = excluded.key, signature = excluded.signature
                        """, logger: logger)
                }
                let counts = try await Self.preKeyCounts(connection, device, logger)
                if max(counts.oneTime, counts.oneTimePQ) > limit { throw OverLimit() }
            }
            return true
        } catch is OverLimit {
            return false
        }
    }

    public func preKeyCounts(for device: DeviceAddress) async throws -> (oneTime: Int, oneTimePQ: Int) {
        let logger = logger
        return try await withConnection { connection in try await Self.preKeyCounts(connection, device, logger) }
    }

    private static func preKeyCounts(_ connection: PostgresConnection, _ device: DeviceAddress, _ logger: Logger) async throws -> (oneTime: Int, oneTimePQ: Int) {
        let id = Int64(device.deviceId)
        let row = try await connection.query("""
            SELECT count(*) FILTER (WHERE kind = 'ec'), count(*) FILTER (WHERE kind = 'pq') FROM one_time_prekeys
            WHERE address = \(device.address) AND device_id = \(id)
            """, logger: logger).collect().first
        guard let row else { return (0, 0) }
        let (ec, pq) = try row.decode((Int64, Int64).self)
        return (Int(ec), Int(pq))
    }

    /// A one-time key is taken with DELETE … RETURNING over the first key no other transaction holds
    /// (SKIP LOCKED): two nodes handing out bundles at once never hand out the same key. One statement:
    /// the signed keys are read and the one-time keys taken (only when both signed keys are there) in one
    /// snapshot and one transaction.
    public func takeBundleKeys(for device: DeviceAddress, oneTime: Bool) async throws
        -> (signed: StoredSignedKey, lastResort: StoredSignedKey, oneTime: StoredSignedKey?, oneTimePQ: StoredSignedKey?)? {
        let (address, id) = (device.address, Int64(device.deviceId))
        var keys: [String: StoredSignedKey] = [:]
        for row in try await rows("""
            WITH signed AS (SELECT kind, key_id, key, signature FROM signed_prekeys WHERE address = \(address) AND device_id = \(id)),
            complete AS (SELECT \(oneTime) AND EXISTS (SELECT 1 FROM signed WHERE kind = 'spk') AND EXISTS (SELECT 1 FROM signed WHERE kind = 'pqlr') AS yes),
            ec AS (
              DELETE FROM one_time_prekeys WHERE (SELECT yes FROM complete) AND (address, device_id, kind, key_id) = (
                SELECT address, device_id, kind, key_id FROM one_time_prekeys WHERE address = \(address) AND device_id = \(id) AND kind = 'ec'
                ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING 'ec'::text, key_id, key, signature),
            pq AS (
              DELETE FROM one_time_prekeys WHERE (SELECT yes FROM complete) AND (address, device_id, kind, key_id) = (
                SELECT address, device_id, kind, key_id FROM one_time_prekeys WHERE address = \(address) AND device_id = \(id) AND kind = 'pq'
                ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING 'pq'::text, key_id, key, signature)
            SELECT kind, key_id, key, signature FROM signed UNION ALL SELECT * FROM ec UNION ALL SELECT * FROM pq
            """) {
            let (kind, keyId, key, signature) = try row.decode((String, Int64, ByteBuffer, ByteBuffer?).self)
            keys[kind] = StoredSignedKey(id: UInt32(keyId), key: Self.bytes(key), signature: signature.map(Self.bytes) ?? [])
        }
        guard let signed = keys["spk"], let lastResort = keys["pqlr"] else { return nil }
        return (signed, lastResort, keys["ec"], keys["pq"])
    }

    // MARK: Mailboxes

    /// One call of `parley_enqueue_v3`, one statement and so one transaction, committed durably before the
    /// send is answered. The function takes the account row's lock first: this account's sends (and its
    /// device-list changes) go one after another, so ids are drawn and committed in the same order. Each
    /// statement of a PL/pgSQL function reads a snapshot of its own, so the mailbox counts are read after
    /// the lock was had and see every send committed before it (a single SQL statement would read them in
    /// a snapshot taken before waiting for the lock, and two sends could pass the limit together).
    /// With `wakesRecipientsOnEnqueue` the function also NOTIFYs the recipients' wake-ups, on the channel of
    /// each node that holds one of their push connections (`push_connections`), which PostgreSQL delivers
    /// at the commit: no statement more, no wake-up for a send that was not stored, and none to a node
    /// without the device.
    public func enqueue(_ envelopes: [(deviceId: UInt32, envelope: [UInt8])], for address: String, ifDeviceList deviceList: [UInt8],
                        now: UInt64, expiresAt: UInt64, mailboxLimit: Int) async throws -> EnqueueResult {
        let devices = envelopes.map { Int64($0.deviceId) }
        let bodies = envelopes.map { Self.bytea($0.envelope) }
        let requested = Set(envelopes.map(\.deviceId))
        let wanted = requested.sorted().map(Int64.init)
        let room = Int64(mailboxLimit) - Int64(requested.isEmpty ? 0 : envelopes.count / requested.count)
        let (list, received, expires) = (Self.bytea(deviceList), Int64(now), Int64(expiresAt))
        let wakeKeys = wakesRecipientsOnEnqueue ? requested.sorted().map { WakeKey(DeviceAddress(address: address, deviceId: $0)).hex } : []
        let statement = EnqueueStatement(address: address, deviceList: list, devices: devices, bodies: bodies, wanted: wanted, room: room,
                                         received: received, expires: expires, wakeKeys: wakeKeys)
        guard let row = try await run(statement).first else { return .unknownAccount }
        let (outcome, fullDevice) = row
        switch outcome {
        case "stored": return .stored
        case "device_list_changed": return .deviceListChanged
        case "mailbox_full": return .mailboxFull(deviceId: UInt32(fullDevice ?? 0))
        default: return .unknownAccount
        }
    }

    /// Migration 3. `room`: how many envelopes a requested device's mailbox may hold before this send.
    static let enqueueFunction = """
        CREATE FUNCTION parley_enqueue_v1(p_address TEXT, p_list BYTEA, p_devices BIGINT[], p_bodies BYTEA[], p_wanted BIGINT[], p_room BIGINT,
          p_received BIGINT, p_expires BIGINT, p_channel TEXT, p_wakes TEXT[], OUT outcome TEXT, OUT full_device BIGINT)
          LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          current_list BYTEA;
        BEGIN
          SELECT device_list INTO current_list FROM accounts WHERE address = p_address FOR UPDATE;
          IF NOT FOUND THEN outcome := 'unknown_account'; RETURN; END IF;
          IF current_list <> p_list THEN outcome := 'device_list_changed'; RETURN; END IF;
          SELECT min(w.d) INTO full_device FROM unnest(p_wanted) AS w(d)
            WHERE (SELECT count(*) FROM messages WHERE address = p_address AND device_id = w.d) > p_room;
          IF full_device IS NOT NULL THEN outcome := 'mailbox_full'; RETURN; END IF;
          INSERT INTO messages (address, device_id, envelope, received_at, expires_at)
            SELECT p_address, d, e, p_received, p_expires FROM unnest(p_devices, p_bodies) WITH ORDINALITY AS t(d, e, n) ORDER BY n;
          PERFORM pg_notify(p_channel, w) FROM unnest(p_wakes) AS t(w);
          outcome := 'stored';
        END
        $$
        """

    /// Schema version 6: `parley_enqueue_v1` with the wake-ups routed. `p_keys`: the recipients' `WakeKey`s; each
    /// node holding a push connection of one of them (`push_connections`) is notified on its own channel
    /// (`PostgresWakeBroker.channel(of:)`). The row is read after the account row's lock was had, and a
    /// node registers a push connection under that lock too (`PostgresWakeBroker`): a connection
    /// registered before this send commits is in the table this statement reads, or its registration
    /// waited for this commit and the device's first fetch finds the message.
    static let enqueueFunction2 = """
        CREATE FUNCTION parley_enqueue_v2(p_address TEXT, p_list BYTEA, p_devices BIGINT[], p_bodies BYTEA[], p_wanted BIGINT[], p_room BIGINT,
          p_received BIGINT, p_expires BIGINT, p_keys TEXT[], OUT outcome TEXT, OUT full_device BIGINT)
          LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
          current_list BYTEA;
        BEGIN
          SELECT device_list INTO current_list FROM accounts WHERE address = p_address FOR UPDATE;
          IF NOT FOUND THEN outcome := 'unknown_account'; RETURN; END IF;
          IF current_list <> p_list THEN outcome := 'device_list_changed'; RETURN; END IF;
          SELECT min(w.d) INTO full_device FROM unnest(p_wanted) AS w(d)
            WHERE (SELECT count(*) FROM messages WHERE address = p_address AND device_id = w.d) > p_room;
          IF full_device IS NOT NULL THEN outcome := 'mailbox_full'; RETURN; END IF;
          INSERT INTO messages (address, device_id, envelope, received_at, expires_at)
            SELECT p_address, d, e, p_received, p_expires FROM unnest(p_devices, p_bodies) WITH ORDINALITY AS t(d, e, n) ORDER BY n;
          PERFORM pg_notify('parley_wake_' || to_hex(p.node), 'w' || p.wake_key)
            FROM push_connections p WHERE p.wake_key = ANY(p_keys);
          outcome := 'stored';
        END
        $$
        """

    /// Schema version 7: `parley_enqueue_v2` with one plan of each statement kept for the session. PL/pgSQL
    /// keeps a function's statements in the plan cache, which with parameters compares a generic plan's
    /// estimate with those of plans made for the values at hand: with `unnest` of an array parameter the
    /// generic estimate (10 rows) lost to the custom one (the array's length) every time, so every call of
    /// v2 planned its statements anew (planning was 12% of the backends' CPU samples under `perf` on the
    /// bench's closed loop; none with v3). Generic plans look the same rows up by the same indexes, but for
    /// the wake-ups: `wake_key = ANY(p_keys)` of a generic plan, reckoned for 10 keys, reads a small
    /// `push_connections` whole (EXPLAIN: with 1,000 rows it did, with 101,000 it took the index), so each
    /// key is looked up on its own.
    static let enqueueFunction3 = """
        CREATE FUNCTION parley_enqueue_v3(p_address TEXT, p_list BYTEA, p_devices BIGINT[], p_bodies BYTEA[], p_wanted BIGINT[], p_room BIGINT,
          p_received BIGINT, p_expires BIGINT, p_keys TEXT[], OUT outcome TEXT, OUT full_device BIGINT)
          LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
        DECLARE
          current_list BYTEA;
          key TEXT;
        BEGIN
          SELECT device_list INTO current_list FROM accounts WHERE address = p_address FOR UPDATE;
          IF NOT FOUND THEN outcome := 'unknown_account'; RETURN; END IF;
          IF current_list <> p_list THEN outcome := 'device_list_changed'; RETURN; END IF;
          SELECT min(w.d) INTO full_device FROM unnest(p_wanted) AS w(d)
            WHERE (SELECT count(*) FROM messages WHERE address = p_address AND device_id = w.d) > p_room;
          IF full_device IS NOT NULL THEN outcome := 'mailbox_full'; RETURN; END IF;
          INSERT INTO messages (address, device_id, envelope, received_at, expires_at)
            SELECT p_address, d, e, p_received, p_expires FROM unnest(p_devices, p_bodies) WITH ORDINALITY AS t(d, e, n) ORDER BY n;
          FOREACH key IN ARRAY p_keys LOOP
            PERFORM pg_notify('parley_wake_' || to_hex(p.node), 'w' || p.wake_key) FROM push_connections p WHERE p.wake_key = key;
          END LOOP;
          outcome := 'stored';
        END
        $$
        """

    public func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64, groups: Bool) async throws -> MailboxPage {
        try await acknowledge([], for: device, thenFetch: limit, after: after, now: now, groups: groups)
    }

    /// Acknowledgements commit without waiting for the disk (`synchronous_commit = off` for their
    /// transaction), as the SQLite storage's do: a crash of the database server that undoes one delivers
    /// those envelopes again, which clients recognise (PROTOCOL.md §13, at-least-once).
    public func acknowledge(_ ids: [Int64], for device: DeviceAddress) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let id = Int64(device.deviceId)
        let logger = logger
        return try await withConnection { connection in
            let copies = try await connection.query("""
                WITH no_wait AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)),
                deleted AS (
                  DELETE FROM messages WHERE address = \(device.address) AND device_id = \(id) AND id = ANY(\(ids))
                    AND EXISTS (SELECT 1 FROM no_wait) RETURNING group_message)
                SELECT group_message FROM deleted
                """, logger: logger).collect().map { try $0.decode(Int64?.self) }
            try await Self.deleteLastCopies(copies.compactMap { $0 }, connection, logger)
            return copies.count
        }
    }

    /// The acknowledgement, the next page and the prekey counts in one statement, which is its own
    /// transaction: the page is read in the snapshot the deletion started from, so the ids just deleted are
    /// left out of it by hand. `set_config(…, true)` lasts until that transaction's commit, which therefore
    /// does not wait for the disk (see `acknowledge(_:for:)`). An empty `ids` deletes nothing: a fetch.
    public func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64,
                            groups: Bool) async throws -> MailboxPage {
        let (id, time, count) = (Int64(device.deviceId), Int64(now), Int64(limit + 1))
        let logger = logger
        return try await withConnection { connection in
            var messages: [StoredEnvelope] = []
            var (oneTime, oneTimePQ, acknowledged) = (0, 0, 0)
            var copies: [Int64] = []
            for row in try await connection.query("""
                WITH no_wait AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) WHERE cardinality(\(ids)::bigint[]) > 0),
                deleted AS (
                  DELETE FROM messages WHERE address = \(device.address) AND device_id = \(id) AND id = ANY(\(ids))
                    AND EXISTS (SELECT 1 FROM no_wait) RETURNING group_message),
                counts AS (
                  SELECT count(*) FILTER (WHERE kind = 'ec') AS ec, count(*) FILTER (WHERE kind = 'pq') AS pq FROM one_time_prekeys
                  WHERE address = \(device.address) AND device_id = \(id))
                SELECT counts.ec, counts.pq, (SELECT count(*) FROM deleted),
                  (SELECT array_agg(group_message) FROM deleted WHERE group_message IS NOT NULL),
                  page.id, page.envelope, page.received_at, page.group_id, page.epoch, page.is_commit, page.body
                FROM counts LEFT JOIN LATERAL (
                  SELECT m.id, m.envelope, m.received_at, g.group_id, g.epoch, g.is_commit, g.body
                  FROM messages m LEFT JOIN group_messages g ON g.id = m.group_message
                  WHERE m.address = \(device.address) AND m.device_id = \(id) AND m.id > \(after) AND m.expires_at > \(time)
                    AND NOT (m.id = ANY(\(ids))) AND (\(groups) OR m.group_message IS NULL)
                  ORDER BY m.id LIMIT \(count)) AS page ON true
                ORDER BY page.id
                """, logger: logger).collect() {
                let (ec, pq, deleted, deletedCopies, messageId, envelope, receivedAt, groupId, epoch, isCommit, body) =
                    try row.decode((Int64, Int64, Int64, [Int64]?, Int64?, ByteBuffer?, Int64?, ByteBuffer?, Int64?, Bool?, ByteBuffer?).self)
                (oneTime, oneTimePQ, acknowledged) = (Int(ec), Int(pq), Int(deleted))
                copies = deletedCopies ?? []
                guard let messageId, let envelope, let receivedAt else { continue }
                var stored = StoredEnvelope(id: messageId, envelope: Self.bytes(envelope), receivedAt: UInt64(receivedAt))
                if let groupId, let epoch, let isCommit, let body {
                    stored.group = StoredGroupMessage(groupId: Self.bytes(groupId), epoch: UInt64(epoch), isCommit: isCommit, message: Self.bytes(body))
                }
                messages.append(stored)
            }
            try await Self.deleteLastCopies(copies, connection, logger)
            var page = MailboxPage(messages: Array(messages.prefix(limit)), more: messages.count > limit,
                                   oneTimePreKeys: oneTime, oneTimePQPreKeys: oneTimePQ)
            page.acknowledged = acknowledged
            return page
        }
    }

    /// `acknowledge(_:for:thenFetch:…)` with the token's check in the same statement (`MailboxByTokenStatement`):
    /// one round trip per request. An unknown or expired token reads no row and deletes nothing.
    public func acknowledge(_ ids: [Int64], forTokenHash tokenHash: [UInt8], thenFetch limit: Int, after: Int64, now: UInt64,
                            groups: Bool) async throws -> (device: DeviceAddress, page: MailboxPage)? {
        let statement = MailboxByTokenStatement(ids: ids, tokenHash: Self.bytea(tokenHash), now: Int64(now), after: after, count: Int64(limit + 1),
                                                groups: groups)
        let logger = logger
        return try await withConnection { connection in
            var device: DeviceAddress?
            var messages: [StoredEnvelope] = []
            var (oneTime, oneTimePQ, acknowledged) = (0, 0, 0)
            var copies: [Int64] = []
            for try await row in try await connection.execute(statement, logger: logger) {
                let (address, deviceId, ec, pq, deleted, deletedCopies, messageId, envelope, receivedAt, groupId, epoch, isCommit, body) = row
                device = DeviceAddress(address: address, deviceId: UInt32(deviceId))
                (oneTime, oneTimePQ, acknowledged) = (Int(ec), Int(pq), Int(deleted))
                copies = deletedCopies ?? []
                guard let messageId, let envelope, let receivedAt else { continue }
                var stored = StoredEnvelope(id: messageId, envelope: Self.bytes(envelope), receivedAt: UInt64(receivedAt))
                if let groupId, let epoch, let isCommit, let body {
                    stored.group = StoredGroupMessage(groupId: Self.bytes(groupId), epoch: UInt64(epoch), isCommit: isCommit, message: Self.bytes(body))
                }
                messages.append(stored)
            }
            guard let device else { return nil }
            try await Self.deleteLastCopies(copies, connection, logger)
            var page = MailboxPage(messages: Array(messages.prefix(limit)), more: messages.count > limit,
                                   oneTimePreKeys: oneTime, oneTimePQPreKeys: oneTimePQ)
            page.acknowledged = acknowledged
            return (device, page)
        }
    }

    /// A group message's copy goes with the last recipient's acknowledgement. This runs on the connection
    /// that committed the acknowledgement, after its commit, in a snapshot of its own: of two last
    /// acknowledgements at once, the one whose deletion reads later sees both committed and removes the
    /// copy. A copy left behind (this statement never ran: the connection broke) goes at the next purge.
    static func deleteLastCopies(_ copies: [Int64], _ connection: PostgresConnection, _ logger: Logger) async throws {
        guard !copies.isEmpty else { return }
        try await connection.query("""
            WITH no_wait AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))
            DELETE FROM group_messages g WHERE g.id = ANY(\(copies)) AND EXISTS (SELECT 1 FROM no_wait)
              AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.group_message = g.id)
            """, logger: logger)
    }

    public func purgeExpired(now: UInt64) async throws -> Int {
        let time = Int64(now)
        let purged = try await rows("DELETE FROM messages WHERE expires_at <= \(time) RETURNING 1").count
        try await execute("DELETE FROM tokens WHERE expires_at <= \(time)")
        try await execute("DELETE FROM challenges WHERE expires_at <= \(time)")
        try await execute("DELETE FROM provisioning WHERE expires_at <= \(time)")
        try await execute(PostgresWakeBroker.sweep(keeping: 0))
        // Copies whose entries all expired or went with revoked devices.
        try await execute("""
            DELETE FROM group_messages g WHERE g.expires_at <= \(time) OR NOT EXISTS (SELECT 1 FROM messages m WHERE m.group_message = g.id)
            """)
        return purged
    }

    // MARK: Provisioning

    public func createProvisioning(id: String, expiresAt: UInt64) async throws {
        let expires = Int64(expiresAt)
        try await execute("INSERT INTO provisioning (id, expires_at) VALUES (\(id), \(expires))")
    }

    /// One UPDATE on an empty slot: of two fillers, the second finds it filled (its row lock makes it
    /// wait, then re-checks the condition).
    public func fillProvisioning(id: String, message: [UInt8], now: UInt64) async throws -> Bool {
        let (value, time) = (Self.bytea(message), Int64(now))
        return try await !rows("""
            UPDATE provisioning SET message = \(value) WHERE id = \(id) AND message IS NULL AND expires_at > \(time) RETURNING 1
            """).isEmpty
    }

    /// A filled slot is collected with DELETE … RETURNING: exactly one collector gets the message. One
    /// statement, so that a fill landing between "not filled yet" and "does it exist" cannot make a waiting
    /// slot look unknown (both parts read one snapshot). A collector that lost a race may hear "waiting"
    /// once; its next poll finds no slot.
    public func takeProvisioning(id: String, now: UInt64) async throws -> ProvisioningState {
        let time = Int64(now)
        guard let row = try await rows("""
            WITH taken AS (DELETE FROM provisioning WHERE id = \(id) AND expires_at > \(time) AND message IS NOT NULL RETURNING message)
            SELECT (SELECT message FROM taken), EXISTS (SELECT 1 FROM provisioning WHERE id = \(id) AND expires_at > \(time))
            """).first else { return .unknown }
        let (message, exists) = try row.decode((ByteBuffer?, Bool).self)
        if let message { return .filled(Self.bytes(message)) }
        return exists ? .waiting : .unknown
    }

    // MARK: Attachments

    public func createAttachment(id: String, uploadSecretHash: [UInt8], size: Int, expiresAt: UInt64) async throws {
        let (hash, bytes, expires) = (Self.bytea(uploadSecretHash), Int64(size), Int64(expiresAt))
        try await execute("""
            INSERT INTO attachments (id, upload_hash, size, expires_at) VALUES (\(id), \(hash), \(bytes), \(expires))
            """)
    }

    public func attachment(_ id: String, now: UInt64) async throws -> StoredAttachment? {
        let time = Int64(now)
        guard let row = try await rows("SELECT size, complete, upload_hash FROM attachments WHERE id = \(id) AND expires_at > \(time)").first else {
            return nil
        }
        let (size, complete, hash) = try row.decode((Int64, Bool, ByteBuffer?).self)
        return StoredAttachment(size: Int(size), complete: complete, uploadSecretHash: hash.map(Self.bytes))
    }

    public func chargeAttachmentQuota(account: String, window: UInt64, bytes: Int, limits: AttachmentQuota) async throws -> Bool {
        let (period, size, maxBytes, maxSlots) = (Int64(window), Int64(bytes), Int64(limits.bytes), Int64(limits.slots))
        let lockKey = "quota:" + account
        return try await transaction { [logger] connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
            try await connection.query("DELETE FROM attachment_quota WHERE address = \(account) AND period < \(period)", logger: logger)
            let used = try await connection.query("""
                SELECT bytes, slots FROM attachment_quota WHERE address = \(account) AND period = \(period)
                """, logger: logger).collect().first
            var (usedBytes, usedSlots): (Int64, Int64) = (0, 0)
            if let used { (usedBytes, usedSlots) = try used.decode((Int64, Int64).self) }
            guard usedSlots < maxSlots, size <= maxBytes - usedBytes else { return false }
            try await connection.query("""
                INSERT INTO attachment_quota (address, period, bytes, slots) VALUES (\(account), \(period), \(size), 1)
                ON CONFLICT (address, period) DO UPDATE SET bytes = attachment_quota.bytes + excluded.bytes, slots = attachment_quota.slots + 1
                """, logger: logger)
            return true
        }
    }

    public func markAttachmentComplete(_ id: String) async throws {
        try await execute("UPDATE attachments SET complete = true WHERE id = \(id)")
    }

    public func expiredAttachments(now: UInt64) async throws -> [String] {
        let time = Int64(now)
        return try await rows("SELECT id FROM attachments WHERE expires_at <= \(time)").map { try $0.decode(String.self) }
    }

    public func deleteAttachment(_ id: String) async throws {
        try await execute("DELETE FROM attachments WHERE id = \(id)")
    }
}

/// The metrics sampler's reads (see `MetricsCensus`).
extension PostgresRelayStorage: MetricsCensus {
    func mailboxDepths() async throws -> [Int] {
        try await rows("SELECT count(*) FROM messages GROUP BY address, device_id").map { Int(try $0.decode(Int64.self)) }
    }

    func devicesLowOnPreKeys(watermark: Int) async throws -> Int {
        let low = Int64(watermark)
        guard let row = try await rows("""
            SELECT count(*) FROM signed_prekeys s WHERE s.kind = 'spk' AND (
              (SELECT count(*) FROM one_time_prekeys o WHERE o.address = s.address AND o.device_id = s.device_id AND o.kind = 'ec') < \(low)
              OR (SELECT count(*) FROM one_time_prekeys o WHERE o.address = s.address AND o.device_id = s.device_id AND o.kind = 'pq') < \(low))
            """).first else { return 0 }
        return Int(try row.decode(Int64.self))
    }
}

extension PostgresRelayStorage {
    /// A PostgreSQL error that is the database's absence, not a bug: the connection failed or broke, the
    /// pool is closed, or the server refuses work while it shuts down, starts or recovers (SQLSTATE classes
    /// 08 connection exception, 57 operator intervention, 53 insufficient resources).
    static func fault(of error: any Error) -> StorageFault? {
        if error is DatabaseUnreachable { return .databaseUnavailable }
        guard let error = error as? PSQLError else { return nil }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection, .queryCancelled:
            return .databaseUnavailable
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return ["08", "57", "53"].contains(String(state.prefix(2))) ? .databaseUnavailable : nil
        default:
            return nil
        }
    }
}

extension PostgresRelayStorage {
    /// An error in words for the operator's start-up line: PSQLError's own description is deliberately
    /// generic, so the server's message and SQLSTATE, or the client-side code, are spelled out.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: error) }
        if let message = error.serverInfo?[.message] {
            return "\(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "?"))"
        }
        return "\(error.code)" + (error.underlying.map { ": \($0)" } ?? "")
    }
}

/// No connection to the database could be had in time (it is down, restarting or unreachable).
struct DatabaseUnreachable: Error, CustomStringConvertible {
    let waited: Duration
    var description: String { "no connection to the database within \(waited)" }
}

/// Why a node will not use the database's schema.
public enum PostgresSchemaError: Error, CustomStringConvertible {
    case newer(found: Int, known: Int)

    public var description: String {
        switch self {
        case .newer(let found, let known):
            "the database's schema is version \(found), newer than this parley-relay knows (\(known)): another node runs a newer release; upgrade this one, do not downgrade the schema"
        }
    }
}

/// Where the relay's PostgreSQL database is, from `--database`:
/// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]` over TCP, or
/// `postgresql://USER@/DATABASE?host=/run/postgresql` over the Unix socket in that directory (libpq's form).
public struct PostgresLocation: Sendable, Equatable {
    public var host: String?
    public var port: Int
    public var socketDirectory: String?
    public var user: String
    public var password: String?
    public var database: String
    public var requireTLS: Bool

    public init(url: String) throws(PostgresLocationError) {
        guard let components = URLComponents(string: url), ["postgresql", "postgres"].contains(components.scheme ?? "") else {
            throw .invalid("it must be postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE or postgresql://USER@/DATABASE?host=/socket/dir")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        guard let user = components.user, !user.isEmpty else { throw .invalid("it names no user (postgresql://USER@…)") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw .invalid("it names no database (…/DATABASE)") }
        self.user = user
        password = components.password
        self.database = database
        port = components.port ?? 5432
        if let directory = query["host"], directory.hasPrefix("/") {
            socketDirectory = directory
            host = nil
        } else {
            guard let host = components.host, !host.isEmpty else { throw .invalid("it names no host, nor a socket directory (?host=/dir)") }
            self.host = host
            socketDirectory = nil
        }
        switch query["sslmode"] ?? "disable" {
        case "disable": requireTLS = false
        case "require", "verify-full": requireTLS = true
        case let mode: throw .invalid("sslmode '\(mode)' is not supported (disable or require)")
        }
    }

    var clientConfiguration: PostgresClient.Configuration {
        if let socketDirectory {
            return .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        return .init(host: host ?? "127.0.0.1", port: port, username: user, password: password, database: database,
                     tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
    }

    /// The location for logs: without the password.
    public var redacted: String {
        if let socketDirectory { return "postgresql://\(user)@/\(database)?host=\(socketDirectory) (port \(port))" }
        return "postgresql://\(user)@\(host ?? ""):\(port)/\(database)"
    }
}

public enum PostgresLocationError: Error, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let why): "--database: \(why)" }
    }
}
