internal import GRDB
import ParleyProtocol

/// What the user has not read yet: the roster's counts at start-up (so a restart shows the counts the
/// window showed before), and the messages a front end marks read. The delivery state is an encrypted
/// cell, so SQL cannot select on it: a conversation is read newest first, decrypting only the state cell,
/// and only down to the boundary that makes everything older read.
extension EncryptedStore {
    /// For each conversation with unread messages: the incoming messages still `received` that came after
    /// the newest message the user read (`seen`) or wrote. Parley's own notices are stepped over (they are
    /// never marked read). At most `limit` messages deep — reading a conversation marks at most its last
    /// 1,000 messages, so older ones must not count again.
    public func unreadCounts(limit: Int = 1_000) throws(StoreError) -> [ConversationId: Int] {
        let conversations = try conversations()
        return try read { db -> [ConversationId: Int] in
            var counts: [ConversationId: Int] = [:]
            for id in conversations {
                guard let conversation = try existingConversationRow(id, db) else { continue }
                var unread = 0
                try walkNewestFirst(conversation, limit: limit, db) { id, state, row in
                    // Read, or written by this account: everything before it counts as read.
                    guard state == .received else { return false }
                    if try direction(of: row, id) == .incoming { unread += 1 }
                    return true
                }
                if unread > 0 { counts[id] = unread }
            }
            return counts
        }
    }

    /// The incoming messages of `conversation` still `received` above the newest one read
    /// (`seen`), oldest first, at most `limit` messages deep: what marking the conversation read changes.
    /// Messages this account wrote do not end the walk — a reply sent without reading still leaves what
    /// came before it to be marked read.
    public func unreadMessages(in id: ConversationId, limit: Int = 1_000) throws(StoreError) -> [MessageRecord] {
        try read { db -> [MessageRecord] in
            guard let conversation = try existingConversationRow(id, db) else { return [] }
            var unread: [MessageRecord] = []
            var conversations = ConversationCache()
            try walkNewestFirst(conversation, limit: limit, db) { id, state, row in
                switch state {
                case .seen: return false
                case .received:
                    let message = try decodeMessage(row, &conversations)
                    if message.direction == .incoming { unread.append(message) }
                    return true
                default: return true
                }
            }
            return unread.reversed()
        }
    }

    /// Visits the conversation's messages newest first, at most `limit`, with each one's decrypted state,
    /// until `visit` returns false.
    private func walkNewestFirst(_ conversation: Int64, limit: Int, _ db: Database,
                                 _ visit: (Int64, DeliveryState, Row) throws -> Bool) throws {
        let newestFirst = try db.cachedStatement(sql: "SELECT id, body, state, (SELECT at FROM expiring WHERE message = messages.id) AS expires FROM messages WHERE conversation = ? ORDER BY id DESC LIMIT ?")
        let rows = try Row.fetchCursor(newestFirst, arguments: [conversation, limit])
        while let row = try rows.next() {
            let id: Int64 = row["id"]
            let state = try open(row, Self.messageState, .id(id))
            guard state.count == 1, let delivery = DeliveryState(rawValue: state[0]) else {
                throw StoreError.malformedRecord(table: "messages", detail: "state of \(id)")
            }
            guard try visit(id, delivery, row) else { return }
        }
    }

    /// The direction byte of a message body, without decoding the rest (RecordCodec.encode puts it second).
    private func direction(of row: Row, _ id: Int64) throws -> MessageDirection {
        let body = try open(row, Self.messageBody, .id(id))
        guard body.count > 1, body[0] == RecordCodec.version, let direction = MessageDirection(rawValue: body[1]) else {
            throw StoreError.malformedRecord(table: "messages", detail: "direction of \(id)")
        }
        return direction
    }
}
