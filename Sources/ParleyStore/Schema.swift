internal import GRDB

/// The store's tables. What is in the clear: integer ids (ordering), which conversation a message belongs
/// to, lookup hashes (keyed, so they reveal only equality), cell sizes, row counts, and the keyring's
/// Argon2id parameters and salts. Everything else is an encrypted cell (see CellCipher).
enum Schema {
    static let currentVersion = 1

    static var migrator: DatabaseMigrator {
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
        return migrator
    }
}
