import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol

/// The session manager's storage: sessions, peer accounts and prekeys, and the single-transaction commit
/// of everything one send or receive changed (with the decrypted message into the inbox, or the sealed
/// envelopes into the outbox).
extension EncryptedStore: SessionStore {
    private func sessionKey(_ device: DeviceAddress) -> Data {
        Data(cipher.lookup(Array(device.address.utf8) + [0] + withUnsafeBytes(of: device.deviceId.bigEndian) { Array($0) }, table: "sessions"))
    }

    public func sessions(for device: DeviceAddress) throws -> PeerDeviceSessions {
        let key = sessionKey(device)
        guard let cell = try read({ db in try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM sessions WHERE lookup = ?"), arguments: [key]) }) else {
            return PeerDeviceSessions()
        }
        var plain = try open(cell, "sessions", "body", .key([UInt8](key)))
        defer { wipe(&plain) }
        do { return try PeerDeviceSessions(serialized: plain) } catch {
            throw StoreError.malformedRecord(table: "sessions", detail: "\(error)")
        }
    }

    public func deviceIdsWithSessions(of account: AccountAddress) throws -> [UInt32] {
        let owner = lookup(account.description, "sessions.owner")
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT lookup, device FROM sessions WHERE owner = ?", arguments: [owner]) }
        return try deviceIds(rows)
    }

    private func deviceIds(_ rows: [Row]) throws(StoreError) -> [UInt32] {
        var ids: [UInt32] = []
        for row in rows {
            let key: Data = row["lookup"]
            var plain = try open(row["device"], "sessions", "device", .key([UInt8](key)))
            defer { wipe(&plain) }
            guard plain.count == 4 else { throw .malformedRecord(table: "sessions", detail: "device id") }
            ids.append(plain.reduce(0) { $0 << 8 | UInt32($1) })
        }
        return ids.sorted()
    }

    public func account(_ address: AccountAddress) throws -> KnownAccount? {
        try contact(address)?.account
    }

    public func preKeys() throws -> LocalPreKeys {
        guard let cell = try read({ db in try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM local WHERE name = 'prekeys'")) }) else {
            return LocalPreKeys()
        }
        var plain = try open(cell, "local", "body", .key(Array("prekeys".utf8)))
        defer { wipe(&plain) }
        do { return try LocalPreKeys(serialized: plain) } catch {
            throw StoreError.malformedRecord(table: "local", detail: "prekeys: \(error)")
        }
    }

    public func commit(_ changes: SessionChanges) throws {
        try write { db in try apply(changes, db) }
    }

    /// Commits a receive and files what it received in the same transaction: `filings` (one per received
    /// message, in order, each without an inbox entry) go straight into history, so a received message is
    /// written once and the separate filing transaction is saved. Returns what `file` returns.
    public func commit(_ changes: SessionChanges, filing filings: [InboxFiling], ownAddress: AccountAddress) throws -> [MessageRecord?] {
        precondition(filings.count == changes.allReceived.count && filings.allSatisfy { $0.inboxId == nil })
        return try write { db in
            try apply(changes, db, intoInbox: false)
            return try file(filings, ownAddress: ownAddress, db)
        }
    }

    func apply(_ changes: SessionChanges, _ db: Database, intoInbox: Bool = true) throws {
        for (device, sessions) in changes.sessions {
            let key = sessionKey(device)
            var plain = sessions.serialized()
            defer { wipe(&plain) }
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO sessions (lookup, owner, device, body) VALUES (?, ?, ?, ?)").execute(
                           arguments: [key, lookup(device.address, "sessions.owner"),
                                       seal(withUnsafeBytes(of: device.deviceId.bigEndian) { Array($0) }, "sessions", "device", .key([UInt8](key))),
                                       seal(plain, "sessions", "body", .key([UInt8](key)))])
        }
        for device in changes.removedSessions {
            try db.cachedStatement(sql: "DELETE FROM sessions WHERE lookup = ?").execute(arguments: [sessionKey(device)])
        }
        for (address, account) in changes.accounts {
            var contact = try contact(address, db) ?? Contact(address: address, account: account)
            contact.account = account
            try save(contact, db)
        }
        if let keys = changes.preKeys { try saveLocal("prekeys", keys.serialized(), db) }
        let received = changes.allReceived
        if intoInbox && !received.isEmpty {
            var id = try nextId("inbox", db)
            let insert = try db.cachedStatement(sql: "INSERT INTO inbox (id, body) VALUES (?, ?)")
            for message in received {
                try insert.execute(arguments: [id, seal(RecordCodec.encode(message), "inbox", "body", .id(id))])
                id += 1
            }
        }
        for batch in changes.allSent { try record(batch, db) }
    }

    /// A send's envelopes into the outbox (each with the content it carries, for a later re-encryption);
    /// a sent text also into history: it shows as pending exactly while they wait.
    private func record(_ batch: SentBatch, _ db: Database) throws {
        let sentContent = batch.sent?.content.encoded ?? []
        for envelope in batch.outgoing {
            let id = try nextId("outbox", db)
            try db.cachedStatement(sql: "INSERT INTO outbox (id, body) VALUES (?, ?)").execute(
                arguments: [id, seal(RecordCodec.encode(envelope, content: sentContent), "outbox", "body", .id(id))])
        }
        // A reaction, edit or delete this device sent applies here in the same transaction (its copies
        // to the other devices apply there when they arrive).
        if let sent = batch.sent, let actor = try? AccountAddress(sent.sender.address), let conversation = sent.content.conversation,
           let action = MessageAction(content: sent.content, actor: actor, conversation: conversation) {
            _ = try apply(action, db)
        }
        if let sent = batch.sent, let text = sent.content.body.displayText {
            guard let conversation = sent.content.conversation else { throw ProtocolError.malformed("Content: destination") }
            var replyTo: [UInt8]?, attachment: AttachmentPointer?
            if case .message(_, let quoted, let pointer) = sent.content.body { (replyTo, attachment) = (quoted, pointer) }
            _ = try insert(MessageRecord(conversation: conversation, direction: .outgoing, sender: sent.sender,
                                         clientMessageId: sent.content.messageId, sentAt: sent.content.sentAt,
                                         receivedAt: sent.content.sentAt, text: text, state: .pending,
                                         replyTo: replyTo, attachment: attachment,
                                         expiresAt: sent.content.expireTimer.map { sent.content.sentAt + UInt64($0) * 1000 }), db)
        }
    }

    func nextId(_ table: String, _ db: Database) throws -> Int64 {
        try Int64.fetchOne(try db.cachedStatement(sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM \(table)")) ?? 1
    }

    func saveLocal(_ name: String, _ plaintext: [UInt8], _ db: Database) throws {
        var plain = plaintext
        defer { wipe(&plain) }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO local (name, body) VALUES (?, ?)").execute(
                       arguments: [name, seal(plain, "local", "body", .key(Array(name.utf8)))])
    }

    // MARK: Local account

    /// This device's account, or nil before `parley init`.
    public func localAccount() throws(StoreError) -> LocalAccount? {
        guard let cell = try read({ db in try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM local WHERE name = 'account'")) }) else { return nil }
        var plain = try open(cell, "local", "body", .key(Array("account".utf8)))
        defer { wipe(&plain) }
        do { return try LocalAccount(serialized: plain) } catch {
            throw .malformedRecord(table: "local", detail: "account: \(error)")
        }
    }

    /// Saves the account and its prekeys together (account creation, device-list updates).
    public func saveLocalAccount(_ account: LocalAccount, preKeys: LocalPreKeys? = nil) throws(StoreError) {
        try write { db in
            try saveLocal("account", account.serialized(), db)
            if let preKeys { try saveLocal("prekeys", preKeys.serialized(), db) }
        }
    }
}

extension LocalAccount {
    /// This account's address, typed. The store wrote it from an `AccountAddress` (account creation, a
    /// link, a backup): text that does not parse is a damaged record, not a trap.
    public var accountAddress: AccountAddress {
        get throws(StoreError) {
            do { return try AccountAddress(address) } catch { throw .malformedRecord(table: "local", detail: "account: \(error.reason)") }
        }
    }
}
