import Foundation
import GRDB
import ParleyCrypto
import ParleyProtocol

/// Conversations and message history.
extension EncryptedStore {
    /// The id of the conversation with `peer`, created on first use.
    func conversationId(_ peer: String, _ db: Database) throws -> Int64 {
        let key = lookup(peer, "conversations")
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM conversations WHERE lookup = ?", arguments: [key]) { return id }
        let id = try nextId("conversations", db)
        var w = ByteWriter()
        w.u8(RecordCodec.version)
        w.bytes16(Array(peer.utf8))
        try db.execute(sql: "INSERT INTO conversations (id, lookup, body) VALUES (?, ?, ?)",
                       arguments: [id, key, seal(w.bytes, "conversations", "body", .id(id))])
        return id
    }

    private func existingConversationId(_ peer: String, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT id FROM conversations WHERE lookup = ?", arguments: [lookup(peer, "conversations")])
    }

    /// The peers of every conversation, most recently active first.
    public func conversations() throws(StoreError) -> [String] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, c.body FROM conversations c
                LEFT JOIN (SELECT conversation, MAX(id) AS last FROM messages GROUP BY conversation) m ON m.conversation = c.id
                ORDER BY COALESCE(m.last, 0) DESC, c.id DESC
                """)
        }
        var peers: [String] = []
        for row in rows {
            let plain = try open(row["body"], "conversations", "body", .id(row["id"]))
            var r = ByteReader(plain, structure: "conversation")
            guard (try? r.u8()) == RecordCodec.version, let bytes = try? r.bytes16(), let peer = String(validating: bytes, as: UTF8.self) else {
                throw .malformedRecord(table: "conversations", detail: "body")
            }
            peers.append(peer)
        }
        return peers
    }

    private func dedupeKey(_ sender: String, _ clientMessageId: [UInt8]) -> Data {
        Data(cipher.lookup(Array(sender.utf8) + [0] + clientMessageId, table: "messages.dedupe"))
    }

    /// Inserts messages in one transaction. A message whose (sender, client message id) is already stored
    /// is dropped; the result says which were new (their ids) and which were repeats (nil).
    @discardableResult
    public func insertMessages(_ records: [MessageRecord]) throws(StoreError) -> [Int64?] {
        try write { db in try records.map { try insert($0, db) } }
    }

    func insert(_ record: MessageRecord, _ db: Database) throws -> Int64? {
        let dedupe = dedupeKey(record.sender.address, record.clientMessageId)
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM messages WHERE dedupe = ?", arguments: [dedupe]) == true { return nil }
        let conversation = try conversationId(record.conversation, db)
        let id = try nextId("messages", db)
        try db.execute(sql: "INSERT INTO messages (id, conversation, dedupe, body, state) VALUES (?, ?, ?, ?, ?)",
                       arguments: [id, conversation, dedupe, seal(RecordCodec.encode(record), "messages", "body", .id(id)),
                                   seal([record.state.rawValue], "messages", "state", .id(id))])
        return id
    }

    public func updateState(of messageId: Int64, to state: DeliveryState) throws(StoreError) {
        try write { db in
            try db.execute(sql: "UPDATE messages SET state = ? WHERE id = ?",
                           arguments: [seal([state.rawValue], "messages", "state", .id(messageId)), messageId])
        }
    }

    /// Up to `limit` messages of the conversation with `peer` that come before `before` (or the newest),
    /// oldest first — one page of scrollback.
    public func messages(with peer: String, before: Int64? = nil, limit: Int = 200) throws(StoreError) -> [MessageRecord] {
        let rows = try read { db -> [Row] in
            guard let conversation = try existingConversationId(peer, db) else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT id, body, state FROM messages WHERE conversation = ? AND id < ? ORDER BY id DESC LIMIT ?
                """, arguments: [conversation, before ?? Int64.max, limit])
        }
        var page: [MessageRecord] = []
        page.reserveCapacity(rows.count)
        for row in rows.reversed() { page.append(try decodeMessage(row)) }
        return page
    }

    func decodeMessage(_ row: Row) throws(StoreError) -> MessageRecord {
        let id: Int64 = row["id"]
        let stateCell = try open(row["state"], "messages", "state", .id(id))
        guard stateCell.count == 1, let state = DeliveryState(rawValue: stateCell[0]) else {
            throw .malformedRecord(table: "messages", detail: "state of \(id)")
        }
        return try RecordCodec.decodeMessage(try open(row["body"], "messages", "body", .id(id)), id: id, state: state)
    }

    /// Messages whose text contains `text` (case-insensitive), newest first. No plaintext index exists on
    /// disk: every body is decrypted and scanned in memory.
    public func search(_ text: String, with peer: String? = nil, limit: Int = 100) throws(StoreError) -> [MessageRecord] {
        let needle = text.lowercased()
        guard !needle.isEmpty else { return [] }
        var matches: [MessageRecord] = []
        try Self.guarded(path) {
            try database.read { db in
                var sql = "SELECT id, body, state FROM messages"
                var arguments: StatementArguments = []
                if let peer {
                    guard let conversation = try existingConversationId(peer, db) else { return }
                    sql += " WHERE conversation = ?"
                    arguments = [conversation]
                }
                let rows = try Row.fetchCursor(db, sql: sql + " ORDER BY id DESC", arguments: arguments)
                while let row = try rows.next(), matches.count < limit {
                    let id: Int64 = row["id"]
                    let plain = try open(row["body"], "messages", "body", .id(id))
                    guard let body = RecordCodec.text(of: plain), body.lowercased().contains(needle) else { continue }
                    matches.append(try decodeMessage(row))
                }
            }
        }
        return matches
    }

    public func messageCount() throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages") ?? 0 }
    }
}

/// The inbox (decrypted, not yet filed) and the outbox (sealed, not yet accepted by the relay).
extension EncryptedStore {
    /// Inbox entries oldest first.
    public func inbox() throws(StoreError) -> [(id: Int64, message: ReceivedMessage)] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT id, body FROM inbox ORDER BY id") }
        var out: [(Int64, ReceivedMessage)] = []
        for row in rows {
            let id: Int64 = row["id"]
            out.append((id, try RecordCodec.decodeReceived(try open(row["body"], "inbox", "body", .id(id)))))
        }
        return out
    }

    /// Files an inbox entry: stores `record` (unless it is a repeat, or nil for content that is not a
    /// message) and deletes the entry, in one transaction. Returns the new message id, or nil.
    @discardableResult
    public func file(inboxEntry id: Int64, as record: MessageRecord?) throws(StoreError) -> Int64? {
        try write { db in
            let messageId = try record.flatMap { try insert($0, db) }
            try db.execute(sql: "DELETE FROM inbox WHERE id = ?", arguments: [id])
            return messageId
        }
    }

    public func outbox() throws(StoreError) -> [(id: Int64, envelope: OutgoingEnvelope)] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT id, body FROM outbox ORDER BY id") }
        var out: [(Int64, OutgoingEnvelope)] = []
        for row in rows {
            let id: Int64 = row["id"]
            out.append((id, try RecordCodec.decodeOutgoing(try open(row["body"], "outbox", "body", .id(id)))))
        }
        return out
    }

    /// Removes outbox entries the relay has accepted.
    public func removeFromOutbox(_ ids: [Int64]) throws(StoreError) {
        try write { db in
            for id in ids { try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [id]) }
        }
    }

    /// Commits the session changes of a send together with the sent message's history record, so the
    /// conversation shows it exactly when the envelopes are in the outbox.
    public func commit(_ changes: SessionChanges, recording message: MessageRecord) throws(StoreError) -> Int64? {
        try write { db in
            try apply(changes, db)
            return try insert(message, db)
        }
    }
}
