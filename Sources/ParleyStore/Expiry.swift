import Foundation
internal import GRDB
import ParleyProtocol

/// Disappearing messages and retention: which messages are due, and deleting them so that nothing of them
/// stays in the file. The store runs with `secure_delete` (a deleted cell's bytes are overwritten with
/// zeros in the database page, freed pages too), and after a sweep the write-ahead log, which still holds
/// the pages as they were before, is checkpointed and truncated to nothing.
///
/// When a message is due is kept in the clear (`expiring.at`, milliseconds, beside the message's id): the
/// sweep must find due messages without opening every cell. It tells someone who reads the file when a
/// disappearing message will go, which the id order and the file's times already come close to.
extension EncryptedStore {
    /// v4 ("disappearing"): the table of messages with a deletion time. A trigger removes a message's row
    /// whatever deletes the message, so a later message that reuses its id never inherits its time.
    static func expiringMessages(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE expiring (message INTEGER PRIMARY KEY, at INTEGER NOT NULL)")
        try db.execute(sql: "CREATE INDEX expiring_at ON expiring(at)")
        try db.execute(sql: """
            CREATE TRIGGER expiring_follows_messages AFTER DELETE ON messages BEGIN
              DELETE FROM expiring WHERE message = old.id;
            END
            """)
    }

    func scheduleExpiry(of message: Int64, at: UInt64, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO expiring (message, at) VALUES (?, ?)")
            .execute(arguments: [message, Int64(clamping: at)])
    }

    /// The earliest time a message is due (milliseconds), or nil when none has a deletion time.
    public func nextExpiry() throws(StoreError) -> UInt64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT MIN(at) FROM expiring").map { UInt64(max(0, $0)) } }
    }

    /// Deletes every message due at `now` (its deletion time passed) and, with `receivedBefore`, every
    /// message this device stored before that time (retention; system notices included). Returns the
    /// deleted messages as they were, for the caller to remove what it keeps of them elsewhere. When anything
    /// was deleted the write-ahead log is checkpointed and truncated, so the old pages leave the disk.
    @discardableResult
    public func deleteExpiredMessages(now: UInt64, receivedBefore: UInt64? = nil) throws(StoreError) -> [MessageRecord] {
        let deleted = try write { db -> [MessageRecord] in
            var rows = try Row.fetchAll(db, sql: """
                SELECT m.id, m.body, m.state FROM expiring e JOIN messages m ON m.id = e.message WHERE e.at <= ? ORDER BY m.id
                """, arguments: [Int64(clamping: now)])
            var records: [MessageRecord] = []
            var conversations = ConversationCache()
            for row in rows { records.append(try decodeMessage(row, &conversations)) }
            if let cutoff = receivedBefore {
                // Retention: the time a message was stored is sealed in its body, so every body is opened.
                let due = Set(records.map(\.id))
                rows = try Row.fetchAll(db, sql: "SELECT id, body, state FROM messages ORDER BY id")
                for row in rows where !due.contains(row["id"]) {
                    let record = try decodeMessage(row, &conversations)
                    if record.receivedAt < cutoff { records.append(record) }
                }
            }
            let delete = try db.cachedStatement(sql: "DELETE FROM messages WHERE id = ?")
            for record in records { try delete.execute(arguments: [record.id]) }
            // Rows of messages already gone (deleted in a version without the trigger) go too.
            try db.execute(sql: "DELETE FROM expiring WHERE at <= ?", arguments: [Int64(clamping: now)])
            return records
        }
        if !deleted.isEmpty { try checkpoint() }
        return deleted
    }

    /// Whether `secure_delete` is on for this store's connections (a test checks it).
    public func securelyDeletes() throws(StoreError) -> Bool {
        try write { db in try Int.fetchOne(db, sql: "PRAGMA secure_delete") == 1 }
    }
}
