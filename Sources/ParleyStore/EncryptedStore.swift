import Foundation
internal import GRDB
internal import ParleySQLite
import ParleyCrypto
import ParleyProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Everything a Parley client knows, in one SQLite file (WAL), every secret or personal field encrypted
/// under keys derived from a random master key (see Schema and CellCipher for what stays in the clear).
///
/// Writes are serialised by SQLite's single writer; each public mutating call is one transaction.
///
/// One kind of database access per database: this store, whose API is synchronous, reaches its database
/// only through GRDB's synchronous methods, never the async ones (`await database.read`). An async read
/// keeps its reader until its task gets a cooperative thread back, and a synchronous read blocks its thread
/// until a reader is free: mixed on one pool, they can leave every cooperative thread waiting for readers
/// that only a cooperative thread can give back (the relay's storage, async throughout, keeps the other
/// side of this rule). With synchronous access alone, whoever holds a connection is running on a thread
/// and gives it back.
public final class EncryptedStore: @unchecked Sendable {
    public let path: String
    let database: DatabasePool
    let cipher: CellCipher
    /// The contacts as last opened, by lookup key, each with the sealed cell it came from (Contacts.swift).
    let openedContacts = Mutex<[Data: OpenedContact]>([:])
    /// How many contact cells this store has opened (for the tests of that cache).
    let contactCellsOpened = Atomic<Int>(0)

    private init(path: String, database: DatabasePool, cipher: CellCipher) {
        self.path = path
        self.database = database
        self.cipher = cipher
    }

    // MARK: Create and open

    /// Creates a new store at `path`, protected by every method in `unlock` (at least one).
    public static func create(at path: String, unlock: [UnlockMethod],
                              parameters: Argon2id.Parameters = .moderate) throws(StoreError) -> EncryptedStore {
        precondition(!unlock.isEmpty, "a store needs at least one unlock method")
        guard !FileManager.default.fileExists(atPath: path) else { throw .alreadyExists(path: path) }
        let masterKey = SecretBytes.random(count: 32)
        var entries: [KeyringEntry] = []
        for method in unlock { entries.append(try KeyringEntry.wrap(masterKey, with: method, parameters: parameters)) }
        // The file exists, mode 0600, before SQLite opens it: SQLite's own default is 0644 less the umask,
        // and it gives the -wal and -shm files the main file's mode.
        if let code = NewFile.create(at: path, holding: []) {
            if code == EEXIST { throw .alreadyExists(path: path) }
            throw .io("cannot create the store \(path): \(String(cString: strerror(code)))")
        }
        let database = try openPool(path)
        let cipher = CellCipher(masterKey: masterKey)
        try guarded(path) {
            try Schema.migrator(cipher).migrate(database)
            try database.write { db in
                for entry in entries { try insert(entry, into: db) }
            }
        }
        return EncryptedStore(path: path, database: database, cipher: cipher)
    }

    /// Opens and unlocks an existing store. A wrong passphrase or key file throws before anything is written.
    public static func open(at path: String, unlock: UnlockMethod) throws(StoreError) -> EncryptedStore {
        try checkHeader(path)
        let entry = try readKeyring(path, kind: unlock.kind)
        let masterKey = try entry.unwrap(with: unlock)
        let cipher = CellCipher(masterKey: masterKey)
        try upgrade(path, cipher)
        let database = try openPool(path)
        return EncryptedStore(path: path, database: database, cipher: cipher)
    }

    /// Adds or replaces the wrapping for `method`'s kind (e.g. a new passphrase). The master key and all
    /// data stay as they are.
    public func setUnlockMethod(_ method: UnlockMethod, current: UnlockMethod,
                                parameters: Argon2id.Parameters = .moderate) throws(StoreError) {
        let masterKey = try Self.readKeyring(path, kind: current.kind).unwrap(with: current)
        let entry = try KeyringEntry.wrap(masterKey, with: method, parameters: parameters)
        try write { db in try Self.insert(entry, into: db) }
    }

    /// The unlock methods this store accepts ("passphrase", "keyfile").
    public func unlockKinds() throws(StoreError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT kind FROM keyring ORDER BY kind") }
    }

    /// Brings a store written by an earlier version to the current schema. Each migration is one
    /// transaction on a connection of its own, opened before the pool: the pool's own set-up writes to the
    /// file when it opens it, so a migration that fails must leave the file before the pool ever sees it.
    /// Then the file is exactly as the previous version left it, and the error says so.
    private static func upgrade(_ path: String, _ cipher: CellCipher) throws(StoreError) {
        narrowPermissions(path)
        let migrator = Schema.migrator(cipher)
        let known = Set(migrator.migrations)
        let queue = try guarded(path) { try DatabaseQueue(path: path) }
        defer { try? queue.close() }
        let applied = try guarded(path) { try queue.read { try migrator.appliedIdentifiers($0) } }
        if !applied.isSubset(of: known) { throw .unsupportedSchema(found: applied.count, supported: known.count) }
        guard applied != known else { return }
        do {
            try guarded(path) {
                try queue.writeWithoutTransaction { db in try db.requireDurableCommits() }
                try migrator.migrate(queue)
            }
        } catch {
            throw .upgradeFailed(path: path, from: applied.count, to: known.count, detail: error.description)
        }
    }

    /// A store made by an older version (0644) is narrowed to its owner, -wal and -shm too.
    private static func narrowPermissions(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { _ = chmod(path + suffix, 0o600) }
    }

    // MARK: Database plumbing

    private static func openPool(_ path: String) throws(StoreError) -> DatabasePool {
        narrowPermissions(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // A deleted cell (an expired message, a filed inbox entry) is overwritten with zeros in its page,
        // not just unlinked from the b-tree (see Expiry.swift).
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
        return try guarded(path) {
            let pool = try DatabasePool(path: path, configuration: configuration)
            // Durable on commit: a message is acknowledged to the relay only after its commit returns.
            // The write-ahead log is checkpointed every `walPages` pages (SQLite's default is 1000, 4 MiB)
            // and cut back to `walBytes` after each checkpoint, so it stays near what one drain writes
            // instead of several times the data (`checkpoint()` empties it when a drain ends).
            try pool.writeWithoutTransaction { db in
                try db.requireDurableCommits()
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(walPages)")
                try db.execute(sql: "PRAGMA journal_size_limit = \(walBytes)")
            }
            return pool
        }
    }

    static let walPages = 256
    static let walBytes = 1 << 20

    /// Copies the write-ahead log into the database and truncates it to nothing (after a mailbox drain,
    /// when nothing else is writing). Readers in progress make it wait (the busy timeout), not fail.
    public func checkpoint() throws(StoreError) {
        try Self.guarded(path) { try database.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) } }
    }

    /// Bytes of the write-ahead log file now (0 when there is none).
    public func writeAheadLogBytes() -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
    }

    private static func checkHeader(_ path: String) throws(StoreError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw .noStore(path: path) }
        defer { try? handle.close() }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        guard header.count == 16 else { throw .notADatabase(path: path, detail: "file is \(header.count) bytes long") }
        guard header == Data("SQLite format 3\0".utf8) else { throw .notADatabase(path: path, detail: "not an SQLite file") }
    }

    /// Reads one keyring entry through a read-only connection, so unlocking writes nothing.
    private static func readKeyring(_ path: String, kind: String) throws(StoreError) -> KeyringEntry {
        var configuration = Configuration()
        configuration.readonly = true
        return try guarded(path) {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            guard let row = try queue.read({ db in
                try Row.fetchOne(db, sql: "SELECT kind, salt, ops, mem, wrapped FROM keyring WHERE kind = ?", arguments: [kind])
            }) else { throw StoreError.noUnlockMethod(kind: kind == "keyfile" ? "key file" : kind) }
            return KeyringEntry(kind: row["kind"], salt: [UInt8](row["salt"] as Data),
                                parameters: Argon2id.Parameters(opsLimit: UInt64(row["ops"] as Int64), memLimitBytes: Int(row["mem"] as Int64)),
                                wrapped: [UInt8](row["wrapped"] as Data))
        }
    }

    private static func insert(_ entry: KeyringEntry, into db: Database) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO keyring (kind, salt, ops, mem, wrapped) VALUES (?, ?, ?, ?, ?)",
                       arguments: [entry.kind, Data(entry.salt), Int64(entry.parameters.opsLimit),
                                   Int64(entry.parameters.memLimitBytes), Data(entry.wrapped)])
    }

    /// Runs `body`, translating SQLite's failures into errors that name the file and the problem.
    static func guarded<R>(_ path: String, _ body: () throws -> R) throws(StoreError) -> R {
        do {
            return try body()
        } catch let error as StoreError {
            throw error
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB: throw .notADatabase(path: path, detail: error.message ?? "not a database")
            case .SQLITE_CORRUPT: throw .corrupt(path: path, detail: error.message ?? "malformed database")
            case .SQLITE_CANTOPEN: throw .noStore(path: path)
            case .SQLITE_FULL: throw StoreError.diskFull(path: path)
            default: throw .io("\(path): \(error.message ?? "\(error.resultCode)")")
            }
        } catch {
            throw .io("\(path): \(error)")
        }
    }

    func read<R>(_ body: (Database) throws -> R) throws(StoreError) -> R {
        try Self.guarded(path) { try database.read(body) }
    }

    func write<R>(_ body: (Database) throws -> R) throws(StoreError) -> R {
        try Self.guarded(path) { try database.write(body) }
    }

    /// A write that a power failure may undo without losing anything, because what it derives from is
    /// already durable and is replayed: filing decrypted messages out of the inbox (the entries stay in the
    /// inbox until filed, and are filed again on the next receive), or clearing outbox entries the relay
    /// accepted (posted again, then recognised by the receiver as repeats). It commits without waiting for
    /// the disk (`synchronous = NORMAL` for this transaction only). WAL keeps it behind every earlier
    /// commit, the next durable commit syncs it too, and a crash of the process alone loses nothing.
    func writeReplayable<R>(_ body: (Database) throws -> R) throws(StoreError) -> R {
        try Self.guarded(path) {
            try database.writeWithoutTransaction { db in try db.inTransactionWithoutWaitingForDisk { try body(db) } }
        }
    }

    // MARK: Cells

    func seal(_ plaintext: [UInt8], _ table: String, _ column: String, _ row: CellCipher.Row, nonce: [UInt8]? = nil) -> Data {
        Data(cipher.seal(plaintext, table: table, column: column, row: row, nonce: nonce))
    }

    func open(_ cell: Data, _ table: String, _ column: String, _ row: CellCipher.Row) throws(StoreError) -> [UInt8] {
        try cell.withUnsafeBytes { raw in
            Result { () throws(StoreError) -> [UInt8] in try cipher.open(raw, CellCipher.Column(table, column), row: row) }
        }.get()
    }

    /// Opens the cell in column `index` of a fetched row in place, without copying it out of SQLite first.
    /// A NULL cell (the schema forbids them) fails like any other unauthentic cell.
    func open(_ fetched: Row, at index: Int, _ column: CellCipher.Column, _ row: CellCipher.Row) throws(StoreError) -> [UInt8] {
        try openInPlace(column, row) { body throws in try fetched.withUnsafeData(atIndex: index, body) }
    }

    /// The same for the fetched column named like the cell's column.
    func open(_ fetched: Row, _ column: CellCipher.Column, _ row: CellCipher.Row) throws(StoreError) -> [UInt8] {
        try openInPlace(column, row) { body throws in try fetched.withUnsafeData(named: column.column, body) }
    }

    /// The closure given to GRDB returns Void, so no generic metadata is looked up per cell.
    private func openInPlace(_ column: CellCipher.Column, _ row: CellCipher.Row,
                             _ withData: ((Data?) throws -> Void) throws -> Void) throws(StoreError) -> [UInt8] {
        var result: Result<[UInt8], StoreError>?
        do {
            try withData { data in
                guard let data else { return }
                result = data.withUnsafeBytes { raw in
                    Result { () throws(StoreError) -> [UInt8] in try cipher.open(raw, column, row: row) }
                }
            }
        } catch {
            throw .tamperedRow(table: column.table, column: column.column, row: row.description)
        }
        guard let result else { throw .tamperedRow(table: column.table, column: column.column, row: row.description) }
        return try result.get()
    }

    func lookup(_ value: String, _ table: String) -> Data { Data(cipher.lookup(Array(value.utf8), table: table)) }
}
