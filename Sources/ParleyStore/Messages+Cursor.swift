internal import GRDB

/// History read in store order across every conversation, for consumers that keep a cursor (the headless
/// daemon's subscriptions): message ids only grow, so "everything after id N" is what a cursor has not seen.
extension EncryptedStore {
    /// Up to `limit` messages with a store id greater than `id`, oldest first, from every conversation.
    public func messages(after id: Int64, limit: Int = 200) throws(StoreError) -> [MessageRecord] {
        let rows = try read { db in
            try Row.fetchAll(try db.cachedStatement(sql: "SELECT id, body, state, (SELECT at FROM expiring WHERE message = messages.id) AS expires FROM messages WHERE id > ? ORDER BY id LIMIT ?"),
                             arguments: [id, limit])
        }
        var page: [MessageRecord] = []
        page.reserveCapacity(rows.count)
        var conversations = ConversationCache()
        for row in rows { page.append(try decodeMessage(row, &conversations)) }
        return page
    }

    /// The highest message id stored (0 when there is none): a cursor set here skips the existing history.
    public func lastMessageId() throws(StoreError) -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM messages") ?? 0 }
    }
}
