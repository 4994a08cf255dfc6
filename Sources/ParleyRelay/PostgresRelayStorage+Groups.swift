import Logging
import NIOCore
import ParleyProtocol
import PostgresNIO

/// KeyPackages and groups (PROTOCOL.md §17) for relay nodes sharing one database: every rule that must hold
/// across nodes is a row lock or a conditional write inside one transaction.
extension PostgresRelayStorage {
    // MARK: KeyPackages

    public func storeKeyPackages(_ packages: [[UInt8]], lastResort: [UInt8]?, for device: DeviceAddress, limit: Int) async throws -> Bool {
        let (address, id, lockKey) = (device.address, Int64(device.deviceId), "keypackages:\(device.address)#\(device.deviceId)")
        let values = packages.map(Self.bytea)
        let last = lastResort.map(Self.bytea)
        return try await transaction { [logger] connection in
            // Uploads of one device take turns, so that two cannot pass the limit together.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(lockKey), 0))", logger: logger)
            let stored = try await Self.keyPackageCount(connection, device, logger)
            guard stored + packages.count <= limit else { return false }
            if !values.isEmpty {
                try await connection.query("""
                    INSERT INTO key_packages (address, device_id, package)
                    SELECT \(address), \(id), p FROM unnest(\(values)::bytea[]) WITH ORDINALITY AS t(p, n) ORDER BY n
                    """, logger: logger)
            }
            if let last {
                try await connection.query("""
                    INSERT INTO last_resort_key_packages (address, device_id, package) VALUES (\(address), \(id), \(last))
                    ON CONFLICT (address, device_id) DO UPDATE SET package = excluded.package
                    """, logger: logger)
            }
            return true
        }
    }

    public func keyPackageCount(for device: DeviceAddress) async throws -> (count: Int, lastResort: Bool) {
        let (address, id) = (device.address, Int64(device.deviceId))
        let logger = logger
        return try await withConnection { connection in
            let count = try await Self.keyPackageCount(connection, device, logger)
            let lastResort = try await !connection.query("""
                SELECT 1 FROM last_resort_key_packages WHERE address = \(address) AND device_id = \(id)
                """, logger: logger).collect().isEmpty
            return (count, lastResort)
        }
    }

    private static func keyPackageCount(_ connection: PostgresConnection, _ device: DeviceAddress, _ logger: Logger) async throws -> Int {
        let id = Int64(device.deviceId)
        guard let row = try await connection.query("""
            SELECT count(*) FROM key_packages WHERE address = \(device.address) AND device_id = \(id)
            """, logger: logger).collect().first else { return 0 }
        return Int(try row.decode(Int64.self))
    }

    /// DELETE … RETURNING over the oldest package no other transaction holds (SKIP LOCKED): two nodes
    /// claiming at once never hand out the same one. One statement: the last-resort package is read in the
    /// same snapshot, and only when none was claimed.
    public func claimKeyPackage(for device: DeviceAddress) async throws -> (package: [UInt8], lastResort: Bool)? {
        let (address, id) = (device.address, Int64(device.deviceId))
        guard let row = try await rows("""
            WITH claimed AS (
              DELETE FROM key_packages WHERE id = (
                SELECT id FROM key_packages WHERE address = \(address) AND device_id = \(id) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
              RETURNING package)
            SELECT package, false FROM claimed
            UNION ALL
            SELECT package, true FROM last_resort_key_packages
            WHERE address = \(address) AND device_id = \(id) AND NOT EXISTS (SELECT 1 FROM claimed)
            """).first else { return nil }
        let (package, lastResort) = try row.decode((ByteBuffer, Bool).self)
        return (Self.bytes(package), lastResort)
    }

    // MARK: Groups

    public func createGroup(_ groupId: [UInt8], verifier: [UInt8]) async throws -> Bool {
        let (id, value) = (Self.bytea(groupId), Self.bytea(verifier))
        return try await !rows("""
            INSERT INTO mls_groups (id, epoch, verifier) VALUES (\(id), 0, \(value)) ON CONFLICT (id) DO NOTHING RETURNING 1
            """).isEmpty
    }

    public func group(_ groupId: [UInt8]) async throws -> StoredGroup? {
        let id = Self.bytea(groupId)
        guard let row = try await rows("SELECT epoch, verifier FROM mls_groups WHERE id = \(id)").first else { return nil }
        let (epoch, verifier) = try row.decode((Int64, ByteBuffer).self)
        return StoredGroup(epoch: UInt64(epoch), verifier: Self.bytes(verifier))
    }

    /// The group row is locked first (FOR UPDATE by a commit, FOR SHARE by a send: sends of one epoch run
    /// side by side, a commit waits for them and they for it), then the recipient accounts' rows in address
    /// order (as `enqueue` locks one: ids of an account's mailbox are drawn in commit order).
    public func storeGroupMessage(_ write: GroupMessageWrite) async throws -> GroupWriteResult {
        let groupId = Self.bytea(write.groupId)
        let addresses = write.deviceLists.keys.sorted()
        let recipientAddresses = write.recipients.map(\.address)
        let recipientDevices = write.recipients.map { Int64($0.deviceId) }
        let welcomed = write.welcome?.recipients ?? []
        let welcomedAddresses = welcomed.map(\.address), welcomedDevices = welcomed.map { Int64($0.deviceId) }
        let welcomeBody = write.welcome.map { Self.bytea($0.message) }
        // Entries each device would get (one for the commit, one for its Welcome, in principle both).
        var entries: [DeviceAddress: Int] = [:]
        for device in write.recipients + welcomed { entries[device, default: 0] += 1 }
        let countedAddresses = entries.keys.map(\.address), countedDevices = entries.keys.map { Int64($0.deviceId) }
        let added = entries.keys.map { Int64(entries[$0]!) }
        let (received, expires, body, isCommit) = (Int64(write.now), Int64(write.expiresAt), Self.bytea(write.message), write.nextVerifier != nil)
        let nextVerifier = write.nextVerifier.map(Self.bytea)
        let groupInfo = write.groupInfo.map(Self.bytea), rejoiners = write.rejoiners.map(Self.bytea)
        return try await transaction { [logger] connection in
            let lock: PostgresQuery = isCommit ? "SELECT epoch FROM mls_groups WHERE id = \(groupId) FOR UPDATE"
                                               : "SELECT epoch FROM mls_groups WHERE id = \(groupId) FOR SHARE"
            guard let row = try await connection.query(lock, logger: logger).collect().first else { return .unknownGroup }
            let epoch = try row.decode(Int64.self)
            guard UInt64(epoch) == write.epoch else { return .epochIs(UInt64(epoch)) }
            var lists: [String: [UInt8]] = [:]
            for row in try await connection.query("""
                SELECT address, device_list FROM accounts WHERE address = ANY(\(addresses)) ORDER BY address FOR UPDATE
                """, logger: logger).collect() {
                let (address, list) = try row.decode((String, ByteBuffer).self)
                lists[address] = Self.bytes(list)
            }
            guard lists == write.deviceLists else { return .deviceListChanged }
            for row in try await connection.query("""
                SELECT m.address, m.device_id, count(*) + max(r.n) FROM messages m
                JOIN unnest(\(countedAddresses)::text[], \(countedDevices)::bigint[], \(added)::bigint[]) AS r(a, d, n)
                  ON m.address = r.a AND m.device_id = r.d
                GROUP BY m.address, m.device_id
                """, logger: logger).collect() {
                let (address, deviceId, count) = try row.decode((String, Int64, Int64).self)
                if Int(count) > write.mailboxLimit { return .mailboxFull(DeviceAddress(address: address, deviceId: UInt32(deviceId))) }
            }
            if let nextVerifier {
                try await connection.query("UPDATE mls_groups SET epoch = epoch + 1, verifier = \(nextVerifier) WHERE id = \(groupId)", logger: logger)
                if let groupInfo, let rejoiners {
                    try await connection.query("""
                        INSERT INTO mls_group_infos (group_id, epoch, group_info, rejoiners) VALUES (\(groupId), \(epoch + 1), \(groupInfo), \(rejoiners))
                        ON CONFLICT (group_id) DO UPDATE SET epoch = excluded.epoch, group_info = excluded.group_info, rejoiners = excluded.rejoiners
                        """, logger: logger)
                } else {
                    try await connection.query("DELETE FROM mls_group_infos WHERE group_id = \(groupId)", logger: logger)
                }
            }
            let copy = try await connection.query("""
                INSERT INTO group_messages (group_id, epoch, is_commit, body, expires_at) VALUES (\(groupId), \(epoch), \(isCommit), \(body), \(expires))
                RETURNING id
                """, logger: logger).collect()[0].decode(Int64.self)
            try await connection.query("""
                INSERT INTO messages (address, device_id, envelope, received_at, expires_at, group_message)
                SELECT a, d, ''::bytea, \(received), \(expires), \(copy) FROM unnest(\(recipientAddresses)::text[], \(recipientDevices)::bigint[])
                  WITH ORDINALITY AS t(a, d, n) ORDER BY n
                """, logger: logger)
            if let welcomeBody {
                // The Welcome: a message of the epoch the commit starts, queued after it in the same transaction.
                let welcomeCopy = try await connection.query("""
                    INSERT INTO group_messages (group_id, epoch, is_commit, body, expires_at)
                    VALUES (\(groupId), \(epoch + 1), false, \(welcomeBody), \(expires)) RETURNING id
                    """, logger: logger).collect()[0].decode(Int64.self)
                try await connection.query("""
                    INSERT INTO messages (address, device_id, envelope, received_at, expires_at, group_message)
                    SELECT a, d, ''::bytea, \(received), \(expires), \(welcomeCopy) FROM unnest(\(welcomedAddresses)::text[], \(welcomedDevices)::bigint[])
                      WITH ORDINALITY AS t(a, d, n) ORDER BY n
                    """, logger: logger)
            }
            return .stored
        }
    }

    public func groupInfo(_ groupId: [UInt8]) async throws -> StoredGroupInfo? {
        let id = Self.bytea(groupId)
        guard let row = try await rows("SELECT epoch, group_info, rejoiners FROM mls_group_infos WHERE group_id = \(id)").first else { return nil }
        let (epoch, groupInfo, rejoiners) = try row.decode((Int64, ByteBuffer, ByteBuffer).self)
        return StoredGroupInfo(epoch: UInt64(epoch), groupInfo: Self.bytes(groupInfo), rejoiners: Self.bytes(rejoiners))
    }

    /// Stored copies of group messages, their bytes, and the mailbox entries that point at them (tests, the
    /// benchmark).
    func groupMessageCensus() async throws -> (copies: Int, bytes: Int, entries: Int) {
        let row = try await rows("""
            SELECT (SELECT count(*) FROM group_messages), (SELECT COALESCE(sum(length(body)), 0)::bigint FROM group_messages),
              (SELECT count(*) FROM messages WHERE group_message IS NOT NULL)
            """)[0]
        let (copies, bytes, entries) = try row.decode((Int64, Int64, Int64).self)
        return (Int(copies), Int(bytes), Int(entries))
    }
}
