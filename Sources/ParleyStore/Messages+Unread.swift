internal import GRDB

/// How many messages of each conversation the user has not read yet, for a front end's roster at start-up
/// (so a restart shows the same counts the window showed before).
extension EncryptedStore {
    /// For each conversation with unread messages: the incoming messages still `received` that came after
    /// the newest message the user read (`seen`) or wrote. Parley's own notices are stepped over (they are
    /// never marked read). The delivery state is an encrypted cell, so SQL cannot count it: each
    /// conversation is read newest first, only until that boundary, and at most `limit` messages deep —
    /// reading a conversation marks at most its last 1,000 messages, so older ones must not count again.
    public func unreadCounts(limit: Int = 1_000) throws(StoreError) -> [String: Int] {
        let peers = try conversations()
        return try read { db -> [String: Int] in
            var counts: [String: Int] = [:]
            let conversationId = try db.cachedStatement(sql: "SELECT id FROM conversations WHERE lookup = ?")
            let newestFirst = try db.cachedStatement(sql: "SELECT id, body, state FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?")
            for peer in peers {
                guard let conversation = try Int64.fetchOne(conversationId, arguments: [lookup(peer, "conversations")]) else { continue }
                let rows = try Row.fetchCursor(newestFirst, arguments: [conversation, limit])
                var unread = 0
                scan: while let row = try rows.next() {
                    let id: Int64 = row["id"]
                    let state = try open(row, Self.messageState, .id(id))
                    guard state.count == 1, let delivery = DeliveryState(rawValue: state[0]) else {
                        throw StoreError.malformedRecord(table: "messages", detail: "state of \(id)")
                    }
                    switch delivery {
                    case .received:
                        // The body's second byte is the direction (RecordCodec.encode).
                        let body = try open(row, Self.messageBody, .id(id))
                        guard body.count > 1, body[0] == RecordCodec.version, let direction = MessageDirection(rawValue: body[1]) else {
                            throw StoreError.malformedRecord(table: "messages", detail: "direction of \(id)")
                        }
                        if direction == .incoming { unread += 1 }
                    default:
                        break scan  // read, or written by this account: everything before it counts as read
                    }
                }
                if unread > 0 { counts[peer] = unread }
            }
            return counts
        }
    }
}
