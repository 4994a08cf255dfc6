import Foundation
internal import GRDB
internal import ParleySQLite
import ParleyCrypto
import ParleyProtocol

/// The embedded storage: one SQLite file (WAL) in the relay's data directory.
///
/// One kind of database access per database: this storage, whose API is async, reaches its database only
/// through GRDB's async methods (`await database.read`, `write`, `writeWithoutTransaction`, and the group
/// commit's `asyncWriteWithoutTransaction`), never the synchronous ones, which block the calling thread
/// until a connection is free. That thread would be one of Swift's cooperative threads (as many as cores:
/// two on small hosts), and an async read keeps its reader until its task gets a cooperative thread back:
/// synchronous reads waiting on every cooperative thread while async reads hold every reader wedge the
/// relay for good. Only the initialiser is synchronous: it runs before the storage is shared, so nothing
/// else can hold a connection then. The reads on every request's path go through `hotReads`, a connection
/// of their own that never takes one of the pool's readers (see SQLiteHotReads).
public final class SQLiteRelayStorage: RelayStorage, @unchecked Sendable {
    /// A pool (WAL) on a file; a queue for an in-memory database (`inMemory()`).
    let database: any DatabaseWriter
    /// Token lookups, a send's account reads and mailbox pages.
    let hotReads: SQLiteHotReads
    /// Enqueue requests waiting for the next group commit.
    private let enqueues = GroupCommitQueue<PendingEnqueue>()

    public convenience init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        try self.init(database: try DatabasePool(path: path, configuration: configuration)) { try SQLiteHotReads(path: path) }
    }

    /// A database in memory, gone with the storage: for an in-process relay in tests (the same tables
    /// and queries as the file, none of its durability).
    public static func inMemory() throws -> SQLiteRelayStorage {
        let queue = try DatabaseQueue()
        return try SQLiteRelayStorage(database: queue) { SQLiteHotReads(connection: queue) }
    }

    /// `hotReads` is made once the file is migrated.
    private init(database: any DatabaseWriter, hotReads: () throws -> SQLiteHotReads) throws {
        self.database = database
        // A queued envelope is committed durably before the sender gets its 204, and survives a crash or a
        // power failure.
        try database.writeWithoutTransaction { db in
            try db.requireDurableCommits()
            try Self.boundWriteAheadLog(db)
            try Self.keepWriterWorkInMemory(db)
        }
        try Self.migrator.migrate(database)
        // Pages a migration overwrote (secure_delete) reach the main file only at a checkpoint: take it now,
        // before the hot-read connections open and a snapshot of theirs could hold it back.
        try database.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        self.hotReads = try hotReads()
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE accounts (address TEXT PRIMARY KEY, account_key BLOB NOT NULL, device_list BLOB NOT NULL);
                CREATE TABLE devices (address TEXT NOT NULL, device_id INTEGER NOT NULL, identity_key BLOB NOT NULL,
                  PRIMARY KEY (address, device_id));
                CREATE TABLE challenges (challenge BLOB PRIMARY KEY, address TEXT NOT NULL, device_id INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL);
                CREATE TABLE tokens (hash BLOB PRIMARY KEY, address TEXT NOT NULL, device_id INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL);
                CREATE TABLE signed_prekeys (address TEXT NOT NULL, device_id INTEGER NOT NULL, kind TEXT NOT NULL,
                  key_id INTEGER NOT NULL, key BLOB NOT NULL, signature BLOB NOT NULL, PRIMARY KEY (address, device_id, kind));
                CREATE TABLE one_time_prekeys (address TEXT NOT NULL, device_id INTEGER NOT NULL, kind TEXT NOT NULL,
                  key_id INTEGER NOT NULL, key BLOB NOT NULL, signature BLOB, PRIMARY KEY (address, device_id, kind, key_id));
                CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT NOT NULL, device_id INTEGER NOT NULL,
                  envelope BLOB NOT NULL, received_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
                CREATE INDEX messages_by_device ON messages (address, device_id, id);
                CREATE INDEX messages_by_expiry ON messages (expires_at);
                CREATE TABLE attachments (id TEXT PRIMARY KEY, address TEXT NOT NULL, device_id INTEGER NOT NULL,
                  size INTEGER NOT NULL, complete INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL);
                """)
        }
        // The number of queued messages per device, kept by triggers, so that checking the mailbox limit
        // on every enqueue does not count a whole backlog.
        migrator.registerMigration("v2 mailbox counts") { db in
            try db.execute(sql: """
                CREATE TABLE mailbox_counts (address TEXT NOT NULL, device_id INTEGER NOT NULL, count INTEGER NOT NULL,
                  PRIMARY KEY (address, device_id)) WITHOUT ROWID;
                INSERT INTO mailbox_counts (address, device_id, count)
                  SELECT address, device_id, COUNT(*) FROM messages GROUP BY address, device_id;
                CREATE TRIGGER messages_counted_in AFTER INSERT ON messages BEGIN
                  INSERT INTO mailbox_counts (address, device_id, count) VALUES (NEW.address, NEW.device_id, 1)
                    ON CONFLICT (address, device_id) DO UPDATE SET count = count + 1;
                END;
                CREATE TRIGGER messages_counted_out AFTER DELETE ON messages BEGIN
                  UPDATE mailbox_counts SET count = count - 1 WHERE address = OLD.address AND device_id = OLD.device_id;
                END;
                """)
        }
        migrator.registerMigration("v3 provisioning") { db in
            try db.execute(sql: """
                CREATE TABLE provisioning (id TEXT PRIMARY KEY, message BLOB, expires_at INTEGER NOT NULL);
                """)
        }
        // A blob no longer names its uploader: a slot is filled with the upload secret whose hash it keeps,
        // and quotas are counted per account and day in a table that names no blob. Slots made before this
        // have no secret: stored blobs stay downloadable, empty slots can no longer be filled and expire.
        // secure_delete overwrites the freed pages, so the dropped addresses do not linger in the file.
        migrator.registerMigration("v4 attachments without uploader") { db in
            let secureDelete = try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? 0
            defer { try? db.execute(sql: "PRAGMA secure_delete = \(secureDelete)") }
            try db.execute(sql: """
                PRAGMA secure_delete = ON;
                CREATE TABLE attachments_new (id TEXT PRIMARY KEY, upload_hash BLOB, size INTEGER NOT NULL,
                  complete INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO attachments_new (id, upload_hash, size, complete, expires_at)
                  SELECT id, NULL, size, complete, expires_at FROM attachments;
                DROP TABLE attachments;
                ALTER TABLE attachments_new RENAME TO attachments;
                CREATE TABLE attachment_quota (address TEXT NOT NULL, period INTEGER NOT NULL, bytes INTEGER NOT NULL,
                  slots INTEGER NOT NULL, PRIMARY KEY (address, period)) WITHOUT ROWID;
                """)
        }
        // HMAC-SHA256 of the account's delivery access key (PROTOCOL.md §13.1), never the key itself.
        migrator.registerMigration("v5 delivery access") { db in
            try db.execute(sql: "ALTER TABLE accounts ADD COLUMN access_verifier BLOB")
        }
        // MLS delivery (PROTOCOL.md §17): KeyPackages per device; groups as an opaque id, an epoch and the
        // epoch's send verifier; a group message stored once, with an entry (a `messages` row with an empty
        // envelope) in each recipient's mailbox, so ids, limits, expiry and acknowledgement are the mailbox's.
        migrator.registerMigration("v6 groups") { db in
            try db.execute(sql: """
                CREATE TABLE key_packages (id INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT NOT NULL, device_id INTEGER NOT NULL,
                  package BLOB NOT NULL);
                CREATE INDEX key_packages_by_device ON key_packages (address, device_id, id);
                CREATE TABLE last_resort_key_packages (address TEXT NOT NULL, device_id INTEGER NOT NULL, package BLOB NOT NULL,
                  PRIMARY KEY (address, device_id)) WITHOUT ROWID;
                CREATE TABLE mls_groups (id BLOB PRIMARY KEY, epoch INTEGER NOT NULL, verifier BLOB NOT NULL) WITHOUT ROWID;
                CREATE TABLE group_messages (id INTEGER PRIMARY KEY AUTOINCREMENT, group_id BLOB NOT NULL, epoch INTEGER NOT NULL,
                  is_commit INTEGER NOT NULL, body BLOB NOT NULL, expires_at INTEGER NOT NULL);
                CREATE INDEX group_messages_by_expiry ON group_messages (expires_at);
                ALTER TABLE messages ADD COLUMN group_message INTEGER;
                CREATE INDEX messages_by_group_message ON messages (group_message) WHERE group_message IS NOT NULL;
                """)
        }
        // The old account key's statement naming the new one (PROTOCOL.md §3.5), for contacts to read.
        migrator.registerMigration("v7 account key change") { db in
            try db.execute(sql: "ALTER TABLE accounts ADD COLUMN key_change BLOB")
        }
        // The GroupInfo of each group's current epoch, for a member that rejoins by external commit
        // (PROTOCOL.md §17.9), beside the group's row so that a send's read of the epoch stays small.
        migrator.registerMigration("v8 group infos") { db in
            try db.execute(sql: """
                CREATE TABLE mls_group_infos (group_id BLOB PRIMARY KEY, epoch INTEGER NOT NULL, group_info BLOB NOT NULL,
                  rejoiners BLOB NOT NULL) WITHOUT ROWID;
                """)
        }
        return migrator
    }

    // MARK: Accounts

    public func createAccount(address: String, accountKey: [UInt8], deviceList: [UInt8]) async throws -> Bool {
        try await database.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM accounts WHERE address = ?", arguments: [address]) == true { return false }
            try db.execute(sql: "INSERT INTO accounts (address, account_key, device_list) VALUES (?, ?, ?)",
                           arguments: [address, Data(accountKey), Data(deviceList)])
            return true
        }
    }

    public func account(_ address: String) async throws -> StoredAccount? {
        try await hotReads.read { db in
            try Row.fetchOne(try db.cachedStatement(sql: "SELECT account_key, device_list FROM accounts WHERE address = ?"), arguments: [address])
                .map { StoredAccount(accountKey: [UInt8]($0["account_key"] as Data), deviceList: [UInt8]($0["device_list"] as Data)) }
        }
    }

    public func deliveryAccessVerifier(of address: String) async throws -> [UInt8]? {
        let verifier = try await hotReads.read { db in
            try Data.fetchOne(try db.cachedStatement(sql: "SELECT access_verifier FROM accounts WHERE address = ?"), arguments: [address])
        }
        return verifier.map { [UInt8]($0) }
    }

    public func setDeliveryAccessVerifier(_ verifier: [UInt8], for address: String) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE accounts SET access_verifier = ? WHERE address = ?", arguments: [Data(verifier), address])
        }
    }

    /// The `devices` table of schema v1 is no longer read or written: the device list itself is the record.
    public func replaceDeviceList(address: String, replacing current: [UInt8], with list: [UInt8], wiping: [UInt32]) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "UPDATE accounts SET device_list = ? WHERE address = ? AND device_list = ?",
                           arguments: [Data(list), address, Data(current)])
            guard db.changesCount == 1 else { return false }
            try Self.wipe(wiping, of: address, db)
            return true
        }
    }

    public func replaceAccountKey(address: String, replacing current: [UInt8], accountKey: [UInt8], deviceList: [UInt8],
                                  keyChange: [UInt8], wiping: [UInt32]) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "UPDATE accounts SET account_key = ?, device_list = ?, key_change = ? WHERE address = ? AND device_list = ?",
                           arguments: [Data(accountKey), Data(deviceList), Data(keyChange), address, Data(current)])
            guard db.changesCount == 1 else { return false }
            try Self.wipe(wiping, of: address, db)
            return true
        }
    }

    public func accountKeyChange(of address: String) async throws -> [UInt8]? {
        let statement = try await database.read { db in
            try Data.fetchOne(try db.cachedStatement(sql: "SELECT key_change FROM accounts WHERE address = ?"), arguments: [address])
        }
        return statement.map { [UInt8]($0) }
    }

    /// Deletes the tokens, prekeys and queued mail of `devices` (they left the list, or got a new key).
    private static func wipe(_ devices: [UInt32], of address: String, _ db: Database) throws {
        for deviceId in devices {
            for table in ["devices", "tokens", "signed_prekeys", "one_time_prekeys", "messages", "key_packages", "last_resort_key_packages"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE address = ? AND device_id = ?", arguments: [address, deviceId])
            }
        }
    }

    // MARK: Authentication

    public func storeChallenge(_ challenge: [UInt8], address: String, deviceId: UInt32, expiresAt: UInt64) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT INTO challenges (challenge, address, device_id, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(challenge), address, deviceId, Int64(expiresAt)])
        }
    }

    public func takeChallenge(_ challenge: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT address, device_id, expires_at FROM challenges WHERE challenge = ?",
                                             arguments: [Data(challenge)]) else { return nil }
            try db.execute(sql: "DELETE FROM challenges WHERE challenge = ?", arguments: [Data(challenge)])
            try db.execute(sql: "DELETE FROM challenges WHERE expires_at <= ?", arguments: [Int64(now)])
            guard UInt64(row["expires_at"] as Int64) > now else { return nil }
            return DeviceAddress(address: row["address"], deviceId: UInt32(row["device_id"] as Int64))
        }
    }

    public func storeToken(hash: [UInt8], device: DeviceAddress, expiresAt: UInt64) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT INTO tokens (hash, address, device_id, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(hash), device.address, device.deviceId, Int64(expiresAt)])
        }
    }

    public func device(forTokenHash hash: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        try await hotReads.read { db in
            guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT address, device_id FROM tokens WHERE hash = ? AND expires_at > ?"),
                                             arguments: [Data(hash), Int64(now)]) else { return nil }
            return DeviceAddress(address: row["address"], deviceId: UInt32(row["device_id"] as Int64))
        }
    }

    public func revokeTokens(of device: DeviceAddress) async throws {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM tokens WHERE address = ? AND device_id = ?", arguments: [device.address, device.deviceId])
        }
    }

    // MARK: Prekeys

    public func storePreKeys(for device: DeviceAddress, signed: StoredSignedKey?, lastResort: StoredSignedKey?,
                             oneTime: [StoredSignedKey], oneTimePQ: [StoredSignedKey], limit: Int) async throws -> Bool {
        struct OverLimit: Error {}
        do {
            try await database.write { db in
                for (kind, key) in [("spk", signed), ("pqlr", lastResort)] {
                    guard let key else { continue }
                    try db.execute(sql: """
                        INSERT OR REPLACE INTO signed_prekeys (address, device_id, kind, key_id, key, signature) VALUES (?, ?, ?, ?, ?, ?)
                        """, arguments: [device.address, device.deviceId, kind, key.id, Data(key.key), Data(key.signature)])
                }
                for (kind, keys) in [("ec", oneTime), ("pq", oneTimePQ)] {
                    for key in keys {
                        try db.execute(sql: """
                            INSERT OR REPLACE INTO one_time_prekeys (address, device_id, kind, key_id, key, signature) VALUES (?, ?, ?, ?, ?, ?)
                            """, arguments: [device.address, device.deviceId, kind, key.id, Data(key.key),
                                             key.signature.isEmpty ? nil : Data(key.signature)])
                    }
                }
                // Counted inside the transaction, so concurrent uploads cannot pass the limit together.
                let counts = try Self.preKeyCounts(db, device)
                if max(counts.oneTime, counts.oneTimePQ) > limit { throw OverLimit() }   // rolls the upload back
            }
            return true
        } catch is OverLimit {
            return false
        }
    }

    public func preKeyCounts(for device: DeviceAddress) async throws -> (oneTime: Int, oneTimePQ: Int) {
        try await database.read { db in try Self.preKeyCounts(db, device) }
    }

    private static func preKeyCounts(_ db: Database, _ device: DeviceAddress) throws -> (oneTime: Int, oneTimePQ: Int) {
        let count = { (kind: String) in
            try Int.fetchOne(try db.cachedStatement(sql: "SELECT COUNT(*) FROM one_time_prekeys WHERE address = ? AND device_id = ? AND kind = ?"),
                             arguments: [device.address, device.deviceId, kind]) ?? 0
        }
        return (try count("ec"), try count("pq"))
    }

    public func takeBundleKeys(for device: DeviceAddress, oneTime: Bool) async throws
        -> (signed: StoredSignedKey, lastResort: StoredSignedKey, oneTime: StoredSignedKey?, oneTimePQ: StoredSignedKey?)? {
        try await database.write { db in
            func signedKey(_ kind: String) throws -> StoredSignedKey? {
                try Row.fetchOne(db, sql: "SELECT key_id, key, signature FROM signed_prekeys WHERE address = ? AND device_id = ? AND kind = ?",
                                 arguments: [device.address, device.deviceId, kind]).map(Self.key)
            }
            func takeOneTime(_ kind: String) throws -> StoredSignedKey? {
                guard let row = try Row.fetchOne(db, sql: """
                    SELECT key_id, key, signature FROM one_time_prekeys WHERE address = ? AND device_id = ? AND kind = ?
                    ORDER BY key_id LIMIT 1
                    """, arguments: [device.address, device.deviceId, kind]) else { return nil }
                let key = Self.key(row)
                try db.execute(sql: "DELETE FROM one_time_prekeys WHERE address = ? AND device_id = ? AND kind = ? AND key_id = ?",
                               arguments: [device.address, device.deviceId, kind, key.id])
                return key
            }
            guard let signed = try signedKey("spk"), let lastResort = try signedKey("pqlr") else { return nil }
            guard oneTime else { return (signed, lastResort, nil, nil) }
            return (signed, lastResort, try takeOneTime("ec"), try takeOneTime("pq"))
        }
    }

    private static func key(_ row: Row) -> StoredSignedKey {
        StoredSignedKey(id: UInt32(row["key_id"] as Int64), key: [UInt8](row["key"] as Data),
                        signature: (row["signature"] as Data?).map { [UInt8]($0) } ?? [])
    }

    // MARK: Mailboxes

    /// Group commit: concurrent enqueues share one write transaction (and so one fsync). Each request is
    /// checked and inserted in a savepoint of its own, so one refused or failed request changes nothing
    /// and leaves the others alone; every request completes only after the shared commit returned.
    public func enqueue(_ envelopes: [(deviceId: UInt32, envelope: [UInt8])], for address: String, ifDeviceList deviceList: [UInt8],
                        now: UInt64, expiresAt: UInt64, mailboxLimit: Int) async throws -> EnqueueResult {
        try await withCheckedThrowingContinuation { continuation in
            let item = PendingEnqueue(envelopes: envelopes, address: address, deviceList: deviceList, now: now, expiresAt: expiresAt,
                                      mailboxLimit: mailboxLimit, continuation: continuation)
            // The writer runs on the database's own writer queue: no task of its own to hop through.
            if enqueues.submit(item) { database.asyncWriteWithoutTransaction { db in self.writeEnqueues(db) } }
        }
    }

    /// The writer: commits what has queued up in one transaction, then, if more has queued meanwhile, goes
    /// to the back of the writer queue again (so acknowledgements and other writes are not starved by a
    /// steady stream of enqueues); it stops when the queue is empty.
    private func writeEnqueues(_ db: Database) {
        if let batch = enqueues.take() {
            var results: [Result<EnqueueResult, any Error>] = []
            do {
                try db.inTransaction(.immediate) {
                    results = batch.map { item in
                        var result: Result<EnqueueResult, any Error> = .failure(CancellationError())
                        do {
                            try db.inSavepoint {
                                let outcome = try Self.enqueue(item, db)
                                result = .success(outcome)
                                return outcome == .stored ? .commit : .rollback
                            }
                        } catch {
                            result = .failure(error)
                        }
                        return result
                    }
                    return .commit
                }
                for (item, result) in zip(batch, results) { item.continuation.resume(with: result) }
            } catch {
                for item in batch { item.continuation.resume(throwing: error) }
            }
            database.asyncWriteWithoutTransaction { db in self.writeEnqueues(db) }
        }
    }

    private static func enqueue(_ item: PendingEnqueue, _ db: Database) throws -> EnqueueResult {
        let (envelopes, address, now, expiresAt, mailboxLimit) = (item.envelopes, item.address, item.now, item.expiresAt, item.mailboxLimit)
        guard let stored = try Data.fetchOne(try db.cachedStatement(sql: "SELECT device_list FROM accounts WHERE address = ?"), arguments: [address]) else {
            return .unknownAccount
        }
        guard stored == Data(item.deviceList) else { return .deviceListChanged }
        let requested = Set(envelopes.map(\.deviceId))
        guard !requested.isEmpty else { return .stored }
        // Several messages in one send: each device gets one envelope per message.
        let perDevice = envelopes.count / requested.count
        for deviceId in requested.sorted() {
            let queued = try Int.fetchOne(try db.cachedStatement(sql: "SELECT count FROM mailbox_counts WHERE address = ? AND device_id = ?"),
                                          arguments: [address, deviceId]) ?? 0
            if queued + perDevice > mailboxLimit { return .mailboxFull(deviceId: deviceId) }
        }
        for item in envelopes {
            try db.cachedStatement(sql: "INSERT INTO messages (address, device_id, envelope, received_at, expires_at) VALUES (?, ?, ?, ?, ?)").execute(
                           arguments: [address, item.deviceId, Data(item.envelope), Int64(now), Int64(expiresAt)])
        }
        return .stored
    }

    public func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64, groups: Bool) async throws -> MailboxPage {
        try await hotReads.readConsistently { db in try Self.page(db, device, now: now, limit: limit, after: after, groups: groups) }
    }

    private static func page(_ db: Database, _ device: DeviceAddress, now: UInt64, limit: Int, after: Int64, groups: Bool) throws -> MailboxPage {
        let rows = try Row.fetchAll(try db.cachedStatement(sql: """
            SELECT m.id, m.envelope, m.received_at, g.group_id, g.epoch, g.is_commit, g.body
            FROM messages m LEFT JOIN group_messages g ON g.id = m.group_message
            WHERE m.address = ? AND m.device_id = ? AND m.id > ? AND m.expires_at > ? AND (? OR m.group_message IS NULL)
            ORDER BY m.id LIMIT ?
            """), arguments: [device.address, device.deviceId, after, Int64(now), groups, limit + 1])
        let messages = rows.prefix(limit).map { row in
            var envelope = StoredEnvelope(id: row["id"], envelope: [UInt8](row["envelope"] as Data), receivedAt: UInt64(row["received_at"] as Int64))
            if let groupId = row["group_id"] as Data? {
                envelope.group = StoredGroupMessage(groupId: [UInt8](groupId), epoch: UInt64(row["epoch"] as Int64),
                                                    isCommit: row["is_commit"], message: [UInt8](row["body"] as Data))
            }
            return envelope
        }
        let counts = try preKeyCounts(db, device)
        var page = MailboxPage(messages: Array(messages), more: rows.count > limit, oneTimePreKeys: counts.oneTime, oneTimePQPreKeys: counts.oneTimePQ)
        // A page with groups says whether the KeyPackages run low: counted here, in the page's one trip.
        if groups { page.keyPackages = try keyPackageCount(db, device) }
        return page
    }

    /// Deletes acknowledged envelopes without waiting for the disk (`synchronous = NORMAL` for this
    /// transaction): a power failure that undoes it only delivers those envelopes again, and clients
    /// recognise repeats (PROTOCOL.md §13, at-least-once). A crash of the relay process alone loses nothing.
    public func acknowledge(_ ids: [Int64], for device: DeviceAddress) async throws -> Int {
        try await database.writeWithoutTransaction { db in try Self.delete(ids, of: device, db) }
    }

    /// The next page is read on the writer's connection right after the delete: one database trip.
    public func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64,
                            groups: Bool) async throws -> MailboxPage {
        try await database.writeWithoutTransaction { db in
            let deleted = try Self.delete(ids, of: device, db)
            var page = try Self.page(db, device, now: now, limit: limit, after: after, groups: groups)
            page.acknowledged = deleted
            return page
        }
    }

    private static func delete(_ ids: [Int64], of device: DeviceAddress, _ db: Database) throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try db.inTransactionWithoutWaitingForDisk {
            var deleted = 0
            for id in ids {
                let copy = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT group_message FROM messages WHERE id = ? AND address = ? AND device_id = ?"),
                                              arguments: [id, device.address, device.deviceId])
                try db.cachedStatement(sql: "DELETE FROM messages WHERE id = ? AND address = ? AND device_id = ?").execute(
                               arguments: [id, device.address, device.deviceId])
                deleted += db.changesCount
                // A group message's copy goes with the last recipient's acknowledgement.
                if let copy {
                    try db.cachedStatement(sql: """
                        DELETE FROM group_messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM messages WHERE group_message = ?)
                        """).execute(arguments: [copy, copy])
                }
            }
            return deleted
        }
    }

    public func purgeExpired(now: UInt64) async throws -> Int {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM messages WHERE expires_at <= ?", arguments: [Int64(now)])
            let purged = db.changesCount
            try db.execute(sql: "DELETE FROM tokens WHERE expires_at <= ?", arguments: [Int64(now)])
            try db.execute(sql: "DELETE FROM challenges WHERE expires_at <= ?", arguments: [Int64(now)])
            try db.execute(sql: "DELETE FROM provisioning WHERE expires_at <= ?", arguments: [Int64(now)])
            // Copies whose entries all expired or went with revoked devices.
            try db.execute(sql: """
                DELETE FROM group_messages WHERE expires_at <= ? OR NOT EXISTS (SELECT 1 FROM messages WHERE group_message = group_messages.id)
                """, arguments: [Int64(now)])
            return purged
        }
    }

    // MARK: Provisioning

    public func createProvisioning(id: String, expiresAt: UInt64) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT INTO provisioning (id, expires_at) VALUES (?, ?)", arguments: [id, Int64(expiresAt)])
        }
    }

    public func fillProvisioning(id: String, message: [UInt8], now: UInt64) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "UPDATE provisioning SET message = ? WHERE id = ? AND message IS NULL AND expires_at > ?",
                           arguments: [Data(message), id, Int64(now)])
            return db.changesCount == 1
        }
    }

    public func takeProvisioning(id: String, now: UInt64) async throws -> ProvisioningState {
        try await database.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT message FROM provisioning WHERE id = ? AND expires_at > ?",
                                             arguments: [id, Int64(now)]) else { return .unknown }
            guard let message = row["message"] as Data? else { return .waiting }
            try db.execute(sql: "DELETE FROM provisioning WHERE id = ?", arguments: [id])
            return .filled([UInt8](message))
        }
    }

    // MARK: Attachments

    public func createAttachment(id: String, uploadSecretHash: [UInt8], size: Int, expiresAt: UInt64) async throws {
        try await database.write { db in
            try db.execute(sql: "INSERT INTO attachments (id, upload_hash, size, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [id, Data(uploadSecretHash), size, Int64(expiresAt)])
        }
    }

    public func attachment(_ id: String, now: UInt64) async throws -> StoredAttachment? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT size, complete, upload_hash FROM attachments WHERE id = ? AND expires_at > ?",
                             arguments: [id, Int64(now)])
                .map { StoredAttachment(size: $0["size"], complete: $0["complete"], uploadSecretHash: ($0["upload_hash"] as Data?).map { [UInt8]($0) }) }
        }
    }

    public func chargeAttachmentQuota(account: String, window: UInt64, bytes: Int, limits: AttachmentQuota) async throws -> Bool {
        try await database.write { db in
            // Earlier windows of this account are over: only the current one is kept.
            try db.execute(sql: "DELETE FROM attachment_quota WHERE address = ? AND period < ?", arguments: [account, Int64(window)])
            let used = try Row.fetchOne(db, sql: "SELECT bytes, slots FROM attachment_quota WHERE address = ? AND period = ?",
                                        arguments: [account, Int64(window)])
            let usedBytes: Int = used?["bytes"] ?? 0, usedSlots: Int = used?["slots"] ?? 0
            guard usedSlots < limits.slots, bytes <= limits.bytes - usedBytes else { return false }
            try db.execute(sql: """
                INSERT INTO attachment_quota (address, period, bytes, slots) VALUES (?, ?, ?, 1)
                  ON CONFLICT (address, period) DO UPDATE SET bytes = bytes + excluded.bytes, slots = slots + 1
                """, arguments: [account, Int64(window), bytes])
            return true
        }
    }

    public func markAttachmentComplete(_ id: String) async throws {
        try await database.write { db in try db.execute(sql: "UPDATE attachments SET complete = 1 WHERE id = ?", arguments: [id]) }
    }

    public func expiredAttachments(now: UInt64) async throws -> [String] {
        try await database.read { db in try String.fetchAll(db, sql: "SELECT id FROM attachments WHERE expires_at <= ?", arguments: [Int64(now)]) }
    }

    public func deleteAttachment(_ id: String) async throws {
        try await database.write { db in try db.execute(sql: "DELETE FROM attachments WHERE id = ?", arguments: [id]) }
    }
}

/// One enqueue request waiting for its group commit.
struct PendingEnqueue: Sendable {
    let envelopes: [(deviceId: UInt32, envelope: [UInt8])]
    let address: String
    let deviceList: [UInt8]
    let now: UInt64
    let expiresAt: UInt64
    let mailboxLimit: Int
    let continuation: CheckedContinuation<EnqueueResult, any Error>
}

/// Items waiting for a writer. `submit` says whether the caller must start one (none is running);
/// `take` hands the writer everything queued, or nil — and the writer stops — when nothing is.
final class GroupCommitQueue<Item: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var pending: [Item] = []
    private var writing = false

    func submit(_ item: Item) -> Bool {
        lock.withLock {
            pending.append(item)
            if writing { return false }
            writing = true
            return true
        }
    }

    func take() -> [Item]? {
        lock.withLock {
            if pending.isEmpty {
                writing = false
                return nil
            }
            defer { pending = [] }
            return pending
        }
    }
}
