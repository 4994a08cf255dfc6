import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol
#if canImport(Glibc)
import Glibc
#endif
#if canImport(GRDBSQLite)
// GRDB's own SQLite module (the SwiftPM build of GRDB), for reading a cell straight from SQLite's row
// buffer in search; see GRDB's "Raw SQLite Pointers".
internal import GRDBSQLite
#endif

/// Conversations and message history.
extension EncryptedStore {
    /// The row of `conversation`, created on first use.
    func conversationRow(_ conversation: ConversationId, _ db: Database) throws -> Int64 {
        let key = conversationLookup(conversation)
        if let id = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM conversations WHERE lookup = ?"), arguments: [key]) { return id }
        let id = try nextId("conversations", db)
        try db.cachedStatement(sql: "INSERT INTO conversations (id, lookup, body) VALUES (?, ?, ?)").execute(
                       arguments: [id, key, seal(Schema.conversationBody(conversation), "conversations", "body", .id(id))])
        return id
    }

    func existingConversationRow(_ conversation: ConversationId, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM conversations WHERE lookup = ?"), arguments: [conversationLookup(conversation)])
    }

    func conversationLookup(_ conversation: ConversationId) -> Data {
        Data(cipher.lookup(conversation.encoded, table: "conversations"))
    }

    /// Every conversation, most recently active first.
    public func conversations() throws(StoreError) -> [ConversationId] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: """
                SELECT c.id, c.body FROM conversations c
                LEFT JOIN (SELECT conversation, MAX(id) AS last FROM messages GROUP BY conversation) m ON m.conversation = c.id
                ORDER BY COALESCE(m.last, 0) DESC, c.id DESC
                """)
        }
        var conversations: [ConversationId] = []
        for row in rows {
            let plain = try open(row["body"], "conversations", "body", .id(row["id"]))
            guard plain.first == Schema.conversationVersion, let conversation = try? ConversationId(decoding: Array(plain.dropFirst())) else {
                throw .malformedRecord(table: "conversations", detail: "body")
            }
            conversations.append(conversation)
        }
        return conversations
    }

    func dedupeKey(_ sender: String, _ clientMessageId: [UInt8]) -> Data {
        var value: [UInt8] = []
        value.reserveCapacity(sender.utf8.count + 1 + clientMessageId.count)
        value.append(contentsOf: sender.utf8)
        value.append(0)
        value.append(contentsOf: clientMessageId)
        return Data(cipher.lookup(value, table: "messages.dedupe"))
    }

    /// Inserts messages in one transaction. A message whose (sender, client message id) is already stored
    /// is dropped; the result says which were new (their ids) and which were repeats (nil).
    @discardableResult
    public func insertMessages(_ records: [MessageRecord]) throws(StoreError) -> [Int64?] {
        try write { db in
            var inserter = try MessageInserter(db, count: records.count)
            return try records.map { try insert($0, db, &inserter) }
        }
    }

    func insert(_ record: MessageRecord, _ db: Database) throws -> Int64? {
        var inserter = try MessageInserter(db, count: 1)
        return try insert(record, db, &inserter)
    }

    /// What a run of inserts inside one write transaction shares: the prepared statements, the next message
    /// id, the conversations already looked up and a pool of cell nonces. The transaction is the only
    /// writer, so the ids are the ones `nextId` would give each insert (MAX(id) + 1), read from the table
    /// only once.
    struct MessageInserter {
        let existing: Statement
        /// Stores nothing when the dedupe key is already there (the UNIQUE index checks it anyway).
        let insert: Statement
        var nextMessageId: Int64?
        var conversations: [ConversationId: Int64] = [:]
        var nonces: CellCipher.NoncePool

        /// `count`: how many messages will be inserted (two cells each).
        init(_ db: Database, count: Int) throws {
            nonces = CellCipher.NoncePool(expected: 2 * count)
            existing = try db.cachedStatement(sql: "SELECT 1 FROM messages WHERE dedupe = ?")
            insert = try db.cachedStatement(sql: """
                INSERT INTO messages (id, conversation, dedupe, body, state) VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedupe) DO NOTHING
                """)
        }
    }

    /// A repeat stores nothing and creates no conversation. While the conversation is not yet known to
    /// this transaction, the dedupe key is looked up first (so a repeat never creates one); once it is,
    /// the insert's own conflict check on the dedupe index decides.
    private func insert(_ record: MessageRecord, _ db: Database, _ inserter: inout MessageInserter) throws -> Int64? {
        let dedupe = dedupeKey(record.sender.address, record.clientMessageId)
        let conversation: Int64
        if let known = inserter.conversations[record.conversation] {
            conversation = known
        } else {
            if try Bool.fetchOne(inserter.existing, arguments: [dedupe]) == true { return nil }
            conversation = try conversationRow(record.conversation, db)
            inserter.conversations[record.conversation] = conversation
        }
        let id = try inserter.nextMessageId ?? nextId("messages", db)
        let body = seal(RecordCodec.encode(record), "messages", "body", .id(id), nonce: inserter.nonces.next())
        let state = seal([record.state.rawValue], "messages", "state", .id(id), nonce: inserter.nonces.next())
        try inserter.insert.execute(arguments: [id, conversation, dedupe, body, state])
        guard db.changesCount == 1 else { return nil }
        inserter.nextMessageId = id + 1
        if let expiresAt = record.expiresAt { try scheduleExpiry(of: id, at: expiresAt, db) }
        return id
    }

    public func updateState(of messageId: Int64, to state: DeliveryState) throws(StoreError) {
        try write { db in
            try db.cachedStatement(sql: "UPDATE messages SET state = ? WHERE id = ?").execute(
                           arguments: [seal([state.rawValue], "messages", "state", .id(messageId)), messageId])
        }
    }

    /// Up to `limit` messages of `conversation` that come before `before` (or the newest), oldest first —
    /// one page of scrollback.
    public func messages(in conversation: ConversationId, before: Int64? = nil, limit: Int = 200) throws(StoreError) -> [MessageRecord] {
        let rows = try read { db -> [Row] in
            guard let conversation = try existingConversationRow(conversation, db) else { return [] }
            return try Row.fetchAll(db, sql: """
                SELECT m.id, m.body, m.state, e.at AS expires FROM messages m LEFT JOIN expiring e ON e.message = m.id
                WHERE m.conversation = ? AND m.id < ? ORDER BY m.id DESC LIMIT ?
                """, arguments: [conversation, before ?? Int64.max, limit])
        }
        var page: [MessageRecord] = []
        page.reserveCapacity(rows.count)
        var conversations = ConversationCache()
        for row in rows.reversed() { page.append(try inConversation(conversation, decodeMessage(row, &conversations))) }
        return page
    }

    static let messageBody = CellCipher.Column("messages", "body")
    static let messageState = CellCipher.Column("messages", "state")

    func decodeMessage(_ row: Row) throws(StoreError) -> MessageRecord {
        var conversations = ConversationCache()
        return try decodeMessage(row, &conversations)
    }

    func decodeMessage(_ row: Row, _ conversations: inout ConversationCache) throws(StoreError) -> MessageRecord {
        let id: Int64 = row["id"]
        let stateCell = try open(row, Self.messageState, .id(id))
        guard stateCell.count == 1, let state = DeliveryState(rawValue: stateCell[0]) else {
            throw .malformedRecord(table: "messages", detail: "state of \(id)")
        }
        var record = try RecordCodec.decodeMessage(try open(row, Self.messageBody, .id(id)), id: id, state: state, &conversations)
        if row.hasColumn("expires"), let at: Int64 = row["expires"] { record.expiresAt = UInt64(at) }
        return record
    }

    /// Messages whose text contains `text` (case-insensitive), newest first. No plaintext index exists on
    /// disk: every body is decrypted and scanned in memory.
    public func search(_ text: String, in conversation: ConversationId? = nil, limit: Int = 100) throws(StoreError) -> [MessageRecord] {
        let needle = text.lowercased()
        guard !needle.isEmpty else { return [] }
        let matcher = TextMatcher(needle: needle)
        return try Self.guarded(path) {
            try database.read { db -> [MessageRecord] in
                var sql = "SELECT id, body, state FROM messages"
                var arguments: StatementArguments = []
                if let conversation {
                    guard let row = try existingConversationRow(conversation, db) else { return [] }
                    sql += " WHERE conversation = ?"
                    arguments = [row]
                }
                var matches: [MessageRecord] = []
                let statement = try db.makeStatement(sql: sql + " ORDER BY id DESC")
                let rows = try Row.fetchCursor(statement, arguments: arguments)
                var opener = CellCipher.Opener(cipher, Self.messageBody)
                var conversations = ConversationCache()
                while let row = try rows.next(), matches.count < limit {
                    let id: Int64 = row[0]
                    let plain = try openBody(row, statement, id, &opener)
                    guard matcher.matches(body: plain) else { continue }
                    matches.append(try inConversation(conversation, decodeMessage(row, &conversations)))
                }
                return matches
            }
        }
    }

    /// The body cell (column 1) of the row a cursor over `statement` is on. With GRDB's SQLite module at
    /// hand the cell is read in place from SQLite's buffer, the same bytes `Row.withUnsafeData` would wrap
    /// (NULL and an empty blob both fail as tampered cells), without a `Data` per row.
    private func openBody(_ row: Row, _ statement: Statement, _ id: Int64, _ opener: inout CellCipher.Opener) throws(StoreError) -> [UInt8] {
        #if canImport(GRDBSQLite)
        let sqlite = statement.sqliteStatement
        guard sqlite3_column_type(sqlite, 1) != SQLITE_NULL, let bytes = sqlite3_column_blob(sqlite, 1) else {
            throw .tamperedRow(table: "messages", column: "body", row: "\(id)")
        }
        return try opener.open(UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(sqlite, 1))), id: id)
        #else
        return try open(row, at: 1, Self.messageBody, .id(id))
        #endif
    }

    /// `record`, when it belongs to `conversation` (nil: any). The conversation column is in the clear;
    /// the sealed body names the conversation, so a message moved under another conversation, or
    /// conversations whose lookups were swapped, are refused rather than shown in the wrong place.
    func inConversation(_ conversation: ConversationId?, _ record: MessageRecord) throws(StoreError) -> MessageRecord {
        if let conversation, record.conversation != conversation {
            throw .tamperedRow(table: "messages", column: "conversation", row: "\(record.id)")
        }
        return record
    }

    public func messageCount() throws(StoreError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages") ?? 0 }
    }
}

/// The inbox (decrypted, not yet filed) and the outbox (sealed, not yet accepted by the relay).
extension EncryptedStore {
    /// Inbox entries oldest first.
    public func inbox() throws(StoreError) -> [(id: Int64, message: ReceivedMessage)] {
        let rows = try read { db in try Row.fetchAll(try db.cachedStatement(sql: "SELECT id, body FROM inbox ORDER BY id")) }
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
        try writeReplayable { db in
            let messageId = try record.flatMap { try insert($0, db) }
            try db.cachedStatement(sql: "DELETE FROM inbox WHERE id = ?").execute(arguments: [id])
            return messageId
        }
    }

    /// Files several inbox entries in one transaction: each stores its message (unless a repeat), applies
    /// its receipt to this account's own messages, applies its action, and deletes the entry. Returns, per
    /// filing, the message as stored (with its id; for an action the message acted on, as changed), or nil
    /// for a repeat, a refused action or a filing without a message.
    public func file(_ filings: [InboxFiling], ownAddress: AccountAddress) throws(StoreError) -> [MessageRecord?] {
        guard !filings.isEmpty else { return [] }
        return try writeReplayable { db in try file(filings, ownAddress: ownAddress, db) }
    }

    func file(_ filings: [InboxFiling], ownAddress: AccountAddress, _ db: Database) throws -> [MessageRecord?] {
        var inserter = try MessageInserter(db, count: filings.count)
        let delete = try db.cachedStatement(sql: "DELETE FROM inbox WHERE id = ?")
        var stored: [MessageRecord?] = []
        stored.reserveCapacity(filings.count)
        for filing in filings {
            var result: MessageRecord?
            if let message = filing.message, let id = try insert(message, db, &inserter) {
                result = message
                result?.id = id
            }
            if let action = filing.action { result = try apply(action, db) }
            if let receipt = filing.receipt {
                if let author = filing.receiptAbout.map(Self.author) ?? ownAddress {
                    _ = try advance(ofMessagesSentBy: author, ids: receipt.messageIds, to: receipt.state, db)
                }
            }
            if let inboxId = filing.inboxId { try delete.execute(arguments: [inboxId]) }
            stored.append(result)
        }
        return stored
    }

    public func outbox() throws(StoreError) -> [(id: Int64, envelope: OutgoingEnvelope)] {
        try outboxEntries().map { ($0.id, $0.envelope) }
    }

    /// Outbox rows oldest first (at most `limit`), with the content each carries.
    public func outboxEntries(limit: Int? = nil) throws(StoreError) -> [OutboxEntry] {
        let rows = try read { db in
            try Row.fetchAll(try db.cachedStatement(sql: "SELECT id, body FROM outbox ORDER BY id LIMIT ?"), arguments: [limit ?? -1])
        }
        var out: [OutboxEntry] = []
        for row in rows {
            let id: Int64 = row["id"]
            let decoded = try RecordCodec.decodeOutgoing(try open(row["body"], "outbox", "body", .id(id)))
            out.append(OutboxEntry(id: id, envelope: decoded.envelope, content: decoded.content))
        }
        return out
    }

    /// Sets the delivery state of this account's own messages, found by client message id (receipts from
    /// a peer, relay acceptance). A state never goes backwards (read stays read).
    @discardableResult
    public func advanceState(ofMessagesSentBy sender: AccountAddress, ids: [[UInt8]], to state: DeliveryState) throws(StoreError) -> Int {
        try write { db in try advance(ofMessagesSentBy: sender, ids: ids, to: state, db) }
    }

    func advance(ofMessagesSentBy sender: AccountAddress, ids: [[UInt8]], to state: DeliveryState, _ db: Database) throws -> Int {
        let sender = sender.description
        var changed = 0
        for clientId in ids {
            guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT id, state FROM messages WHERE dedupe = ?"),
                                             arguments: [dedupeKey(sender, clientId)]) else { continue }
            let id: Int64 = row["id"]
            let current = try open(row["state"], "messages", "state", .id(id))
            guard current.count == 1, let old = DeliveryState(rawValue: current[0]), old.rank < state.rank else { continue }
            try db.cachedStatement(sql: "UPDATE messages SET state = ? WHERE id = ?").execute(
                           arguments: [seal([state.rawValue], "messages", "state", .id(id)), id])
            changed += 1
        }
        return changed
    }

    /// One message by its sender and client message id (an indexed lookup), or nil.
    public func message(sentBy sender: AccountAddress, clientMessageId: [UInt8]) throws(StoreError) -> MessageRecord? {
        let sender = sender.description
        guard let row = try read({ db in
            try Row.fetchOne(try db.cachedStatement(sql: "SELECT id, body, state, (SELECT at FROM expiring WHERE message = messages.id) AS expires FROM messages WHERE dedupe = ?"),
                             arguments: [dedupeKey(sender, clientMessageId)])
        }) else { return nil }
        return try decodeMessage(row)
    }

    /// After the relay accepted some outbox batches: removes their entries and advances this account's
    /// messages they carried (by client message id) to `.sent`, in one transaction. Returns those
    /// messages as stored afterwards (batches without a history record, such as receipts, have none).
    public func completeOutbox(_ entryIds: [Int64], sentBy sender: AccountAddress, batches: [[UInt8]]) throws(StoreError) -> [MessageRecord] {
        let sender = sender.description
        return try writeReplayable { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM outbox WHERE id = ?")
            for id in entryIds { try delete.execute(arguments: [id]) }
            // One read per message: the record, advanced to sent here unless it is further along already.
            var records: [MessageRecord] = []
            for batch in batches {
                guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT id, body, state, (SELECT at FROM expiring WHERE message = messages.id) AS expires FROM messages WHERE dedupe = ?"),
                                                 arguments: [dedupeKey(sender, batch)]) else { continue }
                var record = try decodeMessage(row)
                if record.state.rank < DeliveryState.sent.rank {
                    try db.cachedStatement(sql: "UPDATE messages SET state = ? WHERE id = ?").execute(
                                   arguments: [seal([DeliveryState.sent.rawValue], "messages", "state", .id(record.id)), record.id])
                    record.state = .sent
                }
                records.append(record)
            }
            return records
        }
    }

    /// Deletes one message of this account from its conversation (a failed one the user gave up on, or
    /// sent again as a new message). Returns whether there was one.
    @discardableResult
    public func deleteMessage(sentBy sender: AccountAddress, clientMessageId: [UInt8]) throws(StoreError) -> Bool {
        let sender = sender.description
        return try write { db in
            try db.cachedStatement(sql: "DELETE FROM messages WHERE dedupe = ?").execute(arguments: [dedupeKey(sender, clientMessageId)])
            return db.changesCount == 1
        }
    }

    /// Whose messages a read receipt from this account's other device is about: a direct conversation's
    /// peer. A group's messages have many authors, and receipts in groups are not carried yet: none.
    static func author(of conversation: ConversationId) -> AccountAddress? {
        switch conversation {
        case .direct(let peer): peer
        case .group: nil
        }
    }

    /// Removes outbox entries the relay has accepted.
    public func removeFromOutbox(_ ids: [Int64]) throws(StoreError) {
        try write { db in
            for id in ids { try db.cachedStatement(sql: "DELETE FROM outbox WHERE id = ?").execute(arguments: [id]) }
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

/// `String(validating: text, as: UTF8.self)?.lowercased().contains(needle)` for the text of a message body,
/// which is what search asks of every message. When the needle and the text are both ASCII without CR, the
/// text is compared byte by byte in place (ASCII letters folded to lower case): for such strings every
/// character is one byte and one grapheme (CR LF is the one ASCII pair that forms a single character, so
/// CR is left to the full comparison) and lower-casing maps only A–Z, so the answer is the same. A needle
/// with NUL also takes the full comparison: Foundation's `contains` lets trailing NULs of the needle match
/// past the end of the text ("ab".contains("b\0") is true), and search keeps that answer. Any other text
/// goes through `String.lowercased().contains`, as before.
struct TextMatcher {
    /// Already lower-cased.
    let needle: String
    /// The needle's bytes when it is ASCII without CR.
    private let asciiNeedle: [UInt8]?

    init(needle: String) {
        self.needle = needle
        let bytes = Array(needle.utf8)
        asciiNeedle = !bytes.isEmpty && bytes.allSatisfy({ $0 < 0x80 && $0 != 0x0D && $0 != 0 }) ? bytes : nil
    }

    func matches(body plain: [UInt8]) -> Bool {
        guard let range = RecordCodec.textRange(of: plain) else { return false }
        if let asciiNeedle {
            let fast = plain.withUnsafeBytes { Self.asciiContains(UnsafeRawBufferPointer(rebasing: $0[range]), asciiNeedle) }
            if let fast { return fast }
        }
        guard let text = String(validating: plain[range], as: UTF8.self) else { return false }
        return text.lowercased().contains(needle)
    }

    /// Whether lower-cased `text` contains `needle`, or nil when `text` is not ASCII without CR. Eight bytes
    /// at a time: the ASCII and CR checks and the folding of A–Z are done on a UInt64 (no byte below 0x80
    /// carries into the next when 0x3F or 0x25 is added), into a stack buffer that memchr and memcmp then search.
    static func asciiContains(_ text: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool? {
        let count = text.count
        guard count > 0 else { return needle.isEmpty }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { folded -> Bool? in
            let out = UnsafeMutableRawPointer(folded.baseAddress!)
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            var i = 0
            while i + 8 <= count {
                let x = text.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if x & highs != 0 { return nil }
                let cr = x ^ (ones &* 0x0D)
                if (cr &- ones) & ~cr & highs != 0 { return nil }
                let upper = (x &+ ones &* 0x3F) & ~(x &+ ones &* 0x25) & highs
                out.storeBytes(of: x | upper >> 2, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                let byte = text[i]
                if byte >= 0x80 || byte == 0x0D { return nil }
                folded[i] = byte &- 0x41 < 26 ? byte | 0x20 : byte
                i += 1
            }
            guard needle.count <= count else { return false }
            return needle.withUnsafeBytes { n -> Bool in
                let first = Int32(n[0]), last = count - n.count
                var start = 0
                while start <= last {
                    guard let hit = memchr(out + start, first, last - start + 1) else { return false }
                    if memcmp(hit, n.baseAddress!, n.count) == 0 { return true }
                    start = out.distance(to: hit) + 1
                }
                return false
            }
        }
    }
}
