import Foundation
internal import GRDB
import NIOCore
import PostgresNIO

/// Many accounts in one read: a group message or commit names up to `maxGroupRecipients` devices, and the
/// core checks each recipient account's device list. One query, not one per account: at 1,000 accounts the
/// per-account reads were most of the relay's time on a commit (issue #22).
extension SQLiteRelayStorage {
    /// SQLite binds at most 32,766 parameters (3.32+); chunks stay well below, in one read transaction.
    static let accountsPerQuery = 500

    public func accounts(_ addresses: [String]) async throws -> [String: StoredAccount] {
        guard !addresses.isEmpty else { return [:] }
        let unique = Array(Set(addresses))
        return try await hotReads.readConsistently { db in
            var found: [String: StoredAccount] = [:]
            for start in stride(from: 0, to: unique.count, by: Self.accountsPerQuery) {
                let chunk = Array(unique[start..<min(start + Self.accountsPerQuery, unique.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                let rows = try Row.fetchCursor(db, sql: "SELECT address, account_key, device_list FROM accounts WHERE address IN (\(marks))",
                                               arguments: StatementArguments(chunk))
                while let row = try rows.next() {
                    found[row["address"]] = StoredAccount(accountKey: [UInt8](row["account_key"] as Data), deviceList: [UInt8](row["device_list"] as Data))
                }
            }
            return found
        }
    }
}

extension PostgresRelayStorage {
    public func accounts(_ addresses: [String]) async throws -> [String: StoredAccount] {
        guard !addresses.isEmpty else { return [:] }
        let unique = Array(Set(addresses))
        var found: [String: StoredAccount] = [:]
        for row in try await rows("SELECT address, account_key, device_list FROM accounts WHERE address = ANY(\(unique)::text[])") {
            let (address, key, list) = try row.decode((String, ByteBuffer, ByteBuffer).self)
            found[address] = StoredAccount(accountKey: Self.bytes(key), deviceList: Self.bytes(list))
        }
        return found
    }
}
