import Foundation
internal import GRDB
import ParleyProtocol

/// The store's tables. What is in the clear: integer ids (ordering), which conversation a message belongs
/// to, lookup hashes (keyed, so they reveal only equality), cell sizes, row counts, when a disappearing
/// message is due to be deleted (see Expiry.swift), and the keyring's
/// Argon2id parameters and salts. Everything else is an encrypted cell (see CellCipher).
enum Schema {
    static let currentVersion = 4

    /// Every migration, in order. `cipher` opens and seals the cells a migration rewrites. Each migration
    /// is one transaction: one that fails is rolled back and the file stays as the previous version wrote it.
    static func migrator(_ cipher: CellCipher) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // Wrappings of the master key (passphrase, key file). Clear by necessity: they are read before unlock.
            try db.execute(sql: "CREATE TABLE keyring (kind TEXT PRIMARY KEY, salt BLOB NOT NULL, ops INTEGER NOT NULL, mem INTEGER NOT NULL, wrapped BLOB NOT NULL)")
            // Singletons: this device's account and its prekeys. name is 'account' or 'prekeys'.
            try db.execute(sql: "CREATE TABLE local (name TEXT PRIMARY KEY, body BLOB NOT NULL)")
            // Peer accounts: account key, verified device list, trust state, display name.
            try db.execute(sql: "CREATE TABLE contacts (lookup BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")
            // Ratchet sessions per peer device; owner = lookup hash of the peer's address.
            try db.execute(sql: "CREATE TABLE sessions (lookup BLOB PRIMARY KEY, owner BLOB NOT NULL, device BLOB NOT NULL, body BLOB NOT NULL) WITHOUT ROWID")
            try db.execute(sql: "CREATE INDEX sessions_owner ON sessions(owner)")
            try db.execute(sql: "CREATE TABLE conversations (id INTEGER PRIMARY KEY, lookup BLOB NOT NULL UNIQUE, body BLOB NOT NULL)")
            // Messages: dedupe = keyed hash of (sender, client message id), so a repeat is dropped by the index.
            try db.execute(sql: """
                CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation INTEGER NOT NULL REFERENCES conversations(id),
                  dedupe BLOB NOT NULL UNIQUE, body BLOB NOT NULL, state BLOB NOT NULL)
                """)
            try db.execute(sql: "CREATE INDEX messages_by_conversation ON messages(conversation, id)")
            // Decrypted but not yet filed messages (committed with the ratchet state that decrypted them).
            try db.execute(sql: "CREATE TABLE inbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            // Sealed envelopes the relay has not yet accepted.
            try db.execute(sql: "CREATE TABLE outbox (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            try db.execute(sql: "CREATE TABLE attachments (id INTEGER PRIMARY KEY, lookup BLOB NOT NULL UNIQUE, body BLOB NOT NULL)")
            try db.execute(sql: "CREATE TABLE settings (lookup BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")
        }
        migrator.registerMigration("v2") { db in try conversationsById(db, cipher) }
        migrator.registerMigration("v3") { db in try contactsAsPeople(db, cipher) }
        migrator.registerMigration("v4") { db in
            // Groups (PROTOCOL.md §16.6, §17): each a sealed record holding the MLS state of its current epoch,
            // keyed by a keyed hash of its id; and the private keys of this device's KeyPackages, keyed by a
            // keyed hash of each package's reference. Nothing about a group is in the clear but the row count.
            try db.execute(sql: "CREATE TABLE groups (lookup BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")
            try db.execute(sql: "CREATE TABLE key_packages (lookup BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")
        }
        migrator.registerMigration("v5") { db in try EncryptedStore.expiringMessages(db) }
        return migrator
    }

    /// v2: a conversation is a `ConversationId`, no longer a peer's address. Each conversations row is
    /// keyed and sealed by the id's encoding (`kind ‖ bytes16(payload)`), so that a group's id can never
    /// collide with an address: the v1 body `1 ‖ bytes16(address)` becomes `2 ‖ ConversationId.encoded`,
    /// and its lookup the keyed hash of that encoding. The row ids, and so every message's conversation
    /// column, stay as they are; message bodies name a direct conversation by its address, as before.
    static func conversationsById(_ db: Database, _ cipher: CellCipher) throws {
        let body = CellCipher.Column("conversations", "body")
        for row in try Row.fetchAll(db, sql: "SELECT id, body FROM conversations ORDER BY id") {
            let id: Int64 = row["id"]
            let cell: Data = row["body"] ?? Data()
            let plain = try cell.withUnsafeBytes { raw throws(StoreError) in try cipher.open(raw, body, row: .id(id)) }
            var r = ByteReader(plain, structure: "conversation")
            guard (try? r.u8()) == 1, let address = try? r.bytes16(), (try? r.finish()) != nil,
                  let text = String(validating: address, as: UTF8.self) else {
                throw StoreError.malformedRecord(table: "conversations", detail: "body of \(id)")
            }
            guard let conversation = try? ConversationId(destination: text) else {
                throw StoreError.malformedRecord(table: "conversations", detail: "row \(id) does not name an account")
            }
            try db.execute(sql: "UPDATE conversations SET lookup = ?, body = ? WHERE id = ?", arguments: [
                Data(cipher.lookup(conversation.encoded, table: "conversations")),
                Data(cipher.seal(conversationBody(conversation), table: "conversations", column: "body", row: .id(id))), id,
            ])
        }
    }

    /// v3: a contact has a nickname and can be blocked. Both live in the sealed contact cell, not in clear
    /// columns (the file would otherwise show who is blocked): every contacts row is re-sealed as record
    /// version 2, with no nickname and not blocked. Row keys do not change.
    static func contactsAsPeople(_ db: Database, _ cipher: CellCipher) throws {
        let body = CellCipher.Column("contacts", "body")
        for row in try Row.fetchAll(db, sql: "SELECT lookup, body FROM contacts") {
            let key: Data = row["lookup"]
            let cell: Data = row["body"] ?? Data()
            let plain = try cell.withUnsafeBytes { raw throws(StoreError) in try cipher.open(raw, body, row: .key([UInt8](key))) }
            let contact = try Contact(serialized: plain)
            try db.execute(sql: "UPDATE contacts SET body = ? WHERE lookup = ?", arguments: [
                Data(cipher.seal(contact.serialized(), table: "contacts", column: "body", row: .key([UInt8](key)))), key,
            ])
        }
    }

    /// The sealed plaintext of a conversations row (v2).
    static func conversationBody(_ conversation: ConversationId) -> [UInt8] { [conversationVersion] + conversation.encoded }
    static let conversationVersion: UInt8 = 2
}
