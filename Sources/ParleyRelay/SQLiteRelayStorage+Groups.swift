import Foundation
internal import GRDB
import ParleyProtocol

/// KeyPackages and groups (PROTOCOL.md §17). SQLite has one writer: a write transaction's checks and
/// writes see no other writer's.
extension SQLiteRelayStorage {
    // MARK: KeyPackages

    public func storeKeyPackages(_ packages: [[UInt8]], lastResort: [UInt8]?, for device: DeviceAddress, limit: Int) async throws -> Bool {
        try await database.write { db in
            // Counted inside the transaction, so concurrent uploads cannot pass the limit together.
            let stored = try Self.keyPackageCount(db, device)
            guard stored + packages.count <= limit else { return false }
            for package in packages {
                try db.cachedStatement(sql: "INSERT INTO key_packages (address, device_id, package) VALUES (?, ?, ?)")
                    .execute(arguments: [device.address, device.deviceId, Data(package)])
            }
            if let lastResort {
                try db.execute(sql: "INSERT OR REPLACE INTO last_resort_key_packages (address, device_id, package) VALUES (?, ?, ?)",
                               arguments: [device.address, device.deviceId, Data(lastResort)])
            }
            return true
        }
    }

    public func keyPackageCount(for device: DeviceAddress) async throws -> (count: Int, lastResort: Bool) {
        try await database.read { db in
            let lastResort = try Bool.fetchOne(db, sql: "SELECT 1 FROM last_resort_key_packages WHERE address = ? AND device_id = ?",
                                               arguments: [device.address, device.deviceId]) ?? false
            return (try Self.keyPackageCount(db, device), lastResort)
        }
    }

    static func keyPackageCount(_ db: Database, _ device: DeviceAddress) throws -> Int {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT COUNT(*) FROM key_packages WHERE address = ? AND device_id = ?"),
                         arguments: [device.address, device.deviceId]) ?? 0
    }

    public func claimKeyPackage(for device: DeviceAddress) async throws -> (package: [UInt8], lastResort: Bool)? {
        try await database.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT id, package FROM key_packages WHERE address = ? AND device_id = ? ORDER BY id LIMIT 1",
                                          arguments: [device.address, device.deviceId]) {
                try db.execute(sql: "DELETE FROM key_packages WHERE id = ?", arguments: [row["id"] as Int64])
                return ([UInt8](row["package"] as Data), false)
            }
            return try Data.fetchOne(db, sql: "SELECT package FROM last_resort_key_packages WHERE address = ? AND device_id = ?",
                                     arguments: [device.address, device.deviceId]).map { ([UInt8]($0), true) }
        }
    }

    // MARK: Groups

    public func createGroup(_ groupId: [UInt8], verifier: [UInt8]) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO mls_groups (id, epoch, verifier) VALUES (?, 0, ?)", arguments: [Data(groupId), Data(verifier)])
            return db.changesCount == 1
        }
    }

    public func group(_ groupId: [UInt8]) async throws -> StoredGroup? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT epoch, verifier FROM mls_groups WHERE id = ?", arguments: [Data(groupId)])
                .map { StoredGroup(epoch: UInt64($0["epoch"] as Int64), verifier: [UInt8]($0["verifier"] as Data)) }
        }
    }

    public func storeGroupMessage(_ write: GroupMessageWrite) async throws -> GroupWriteResult {
        struct Refused: Error { let result: GroupWriteResult }
        do {
            return try await database.write { db in
                guard let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM mls_groups WHERE id = ?", arguments: [Data(write.groupId)]) else {
                    return .unknownGroup
                }
                guard UInt64(epoch) == write.epoch else { return .epochIs(UInt64(epoch)) }
                // The recipients' lists and mailbox counts in a few statements, not one per account and device.
                let addresses = Array(write.deviceLists.keys)
                var lists: [String: Data] = [:]
                var queued: [DeviceAddress: Int] = [:]
                for start in stride(from: 0, to: addresses.count, by: Self.accountsPerQuery) {
                    let chunk = Array(addresses[start..<min(start + Self.accountsPerQuery, addresses.count)])
                    let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                    let accounts = try Row.fetchCursor(db, sql: "SELECT address, device_list FROM accounts WHERE address IN (\(marks))",
                                                       arguments: StatementArguments(chunk))
                    while let row = try accounts.next() { lists[row["address"]] = row["device_list"] }
                    let counts = try Row.fetchCursor(db, sql: "SELECT address, device_id, count FROM mailbox_counts WHERE address IN (\(marks))",
                                                     arguments: StatementArguments(chunk))
                    while let row = try counts.next() {
                        queued[DeviceAddress(address: row["address"], deviceId: UInt32(row["device_id"] as Int64))] = row["count"]
                    }
                }
                if write.deviceLists.contains(where: { lists[$0.key] != Data($0.value) }) { return .deviceListChanged }
                for recipient in write.recipients + (write.welcome?.recipients ?? []) {
                    queued[recipient, default: 0] += 1
                    if queued[recipient]! > write.mailboxLimit { return .mailboxFull(recipient) }
                }
                if let next = write.nextVerifier {
                    try db.execute(sql: "UPDATE mls_groups SET epoch = epoch + 1, verifier = ? WHERE id = ? AND epoch = ?",
                                   arguments: [Data(next), Data(write.groupId), epoch])
                    guard db.changesCount == 1 else { throw Refused(result: .epochIs(UInt64(epoch))) }
                    if let groupInfo = write.groupInfo, let rejoiners = write.rejoiners {
                        try db.execute(sql: "INSERT OR REPLACE INTO mls_group_infos (group_id, epoch, group_info, rejoiners) VALUES (?, ?, ?, ?)",
                                       arguments: [Data(write.groupId), epoch + 1, Data(groupInfo), Data(rejoiners)])
                    } else {
                        try db.execute(sql: "DELETE FROM mls_group_infos WHERE group_id = ?", arguments: [Data(write.groupId)])
                    }
                }
                try db.execute(sql: "INSERT INTO group_messages (group_id, epoch, is_commit, body, expires_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Data(write.groupId), epoch, write.nextVerifier != nil, Data(write.message), Int64(write.expiresAt)])
                try Self.queue(copy: db.lastInsertedRowID, for: write.recipients, write, db)
                if let welcome = write.welcome {
                    // The Welcome is a message of the epoch the commit starts, queued after it in the same transaction.
                    try db.execute(sql: "INSERT INTO group_messages (group_id, epoch, is_commit, body, expires_at) VALUES (?, ?, 0, ?, ?)",
                                   arguments: [Data(write.groupId), epoch + 1, Data(welcome.message), Int64(write.expiresAt)])
                    try Self.queue(copy: db.lastInsertedRowID, for: welcome.recipients, write, db)
                }
                return .stored
            }
        } catch let refused as Refused {
            return refused.result
        }
    }

    public func groupInfo(_ groupId: [UInt8]) async throws -> StoredGroupInfo? {
        try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT epoch, group_info, rejoiners FROM mls_group_infos WHERE group_id = ?", arguments: [Data(groupId)])
                .map { StoredGroupInfo(epoch: UInt64($0["epoch"] as Int64), groupInfo: [UInt8]($0["group_info"] as Data),
                                       rejoiners: [UInt8]($0["rejoiners"] as Data)) }
        }
    }

    /// Mailbox entries per INSERT statement, at most: one statement per entry cost a prepared-statement
    /// lookup, five bound values and a step each.
    static let entriesPerInsert = 128

    /// An entry pointing at `copy` in each recipient's mailbox, in the recipients' order (ids ascending):
    /// multi-row INSERTs of 128, 64, … 1 rows (powers of two, so that at most eight statements are ever
    /// prepared and cached for it). The mailbox_counts trigger still runs per row.
    private static func queue(copy: Int64, for recipients: [DeviceAddress], _ write: GroupMessageWrite, _ db: Database) throws {
        var start = 0
        while start < recipients.count {
            var rows = entriesPerInsert
            while rows > recipients.count - start { rows /= 2 }
            var values: [(any DatabaseValueConvertible)?] = [Int64(write.now), Int64(write.expiresAt), copy]
            values.reserveCapacity(3 + 2 * rows)
            for recipient in recipients[start..<(start + rows)] {
                values.append(recipient.address)
                values.append(Int64(recipient.deviceId))
            }
            try db.cachedStatement(sql: entriesInserts[rows.trailingZeroBitCount]).execute(arguments: StatementArguments(values))
            start += rows
        }
    }

    /// `INSERT … VALUES (?4, ?5, X'', ?1, ?2, ?3), (?6, ?7, X'', ?1, ?2, ?3), …` of 1, 2, 4, … 128 rows: the
    /// times and the copy are bound once, then an address and a device id per row.
    private static let entriesInserts: [String] = (0...entriesPerInsert.trailingZeroBitCount).map { power in
        "INSERT INTO messages (address, device_id, envelope, received_at, expires_at, group_message) VALUES "
            + (0..<(1 << power)).map { "(?\(4 + 2 * $0), ?\(5 + 2 * $0), X'', ?1, ?2, ?3)" }.joined(separator: ", ")
    }

    /// Stored copies of group messages, their bytes, and the mailbox entries that point at them (tests, the
    /// benchmark).
    func groupMessageCensus() async throws -> (copies: Int, bytes: Int, entries: Int) {
        try await database.read { db in
            let copies = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS b FROM group_messages")!
            let entries = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages WHERE group_message IS NOT NULL") ?? 0
            return (copies["n"], copies["b"], entries)
        }
    }
}
