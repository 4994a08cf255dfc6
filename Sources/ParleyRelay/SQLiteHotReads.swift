import Foundation
internal import GRDB

/// The reads on every request's path — the token lookup of each authenticated request, the recipient's
/// account and delivery access verifier of each send, a mailbox page of each fetch — on read-only
/// connections of their own, never the pool's readers.
///
/// Why not the pool: GRDB's async pool read waits for a reader on one dispatch queue, runs on the reader's
/// queue and comes back: four thread switches, each a wait for a core on a busy host, around a read of
/// microseconds. Reading the pool synchronously was cheaper (81 µs against 192 µs per token lookup) but
/// blocked a cooperative thread until a reader was free, while async reads kept their readers until a
/// cooperative thread resumed them: with one or two cooperative threads the relay wedged for good
/// (RelayReaderPoolTests).
///
/// So a read first tries the inline readers, one connection each, on the calling thread: a reader already
/// in use is passed over (tried, never waited for), and none of them lets SQLite wait for a lock (a busy
/// database is an error there, not a sleep). A read that finds every inline reader in use, or that SQLite
/// would have made wait, goes to the overflow connection, which is used only from its own serial queue: one
/// hop there and a continuation back, the caller's task suspended without holding a thread. Nothing here
/// waits for anything a suspended task holds, and nothing here takes a reader from the pool.
final class SQLiteHotReads: Sendable {
    let inline: [InlineReader]
    private let overflow: DatabaseQueue

    /// Read-only connections to the database file at `path` (already created and migrated): one inline
    /// reader per core (at most four, as many as can run at once) and the overflow connection.
    convenience init(path: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .immediateError
        let inline = try (0..<min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))).map { _ in
            InlineReader(try DatabaseQueue(path: path, configuration: configuration))
        }
        configuration.busyMode = .timeout(10)
        try self.init(inline: inline, overflow: try DatabaseQueue(path: path, configuration: configuration))
    }

    /// Every read on `connection`'s own queue: for an in-memory database, whose one connection also writes
    /// (a read on the calling thread could wait for a write there).
    convenience init(connection: DatabaseQueue) {
        self.init(inline: [], overflow: connection)
    }

    init(inline: [InlineReader], overflow: DatabaseQueue) {
        self.inline = inline
        self.overflow = overflow
    }

    /// Runs `body` outside any transaction: for one statement, which SQLite reads from one snapshot anyway.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        for reader in inline {
            if let result = reader.tryRead(body) { return try result.get() }
        }
        return try await overflowRead(body)
    }

    /// Runs `body` in one read transaction: for several statements that must see the same snapshot.
    func readConsistently<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await read { db in
            try db.beginTransaction(.deferred)
            // A read transaction has nothing to keep: whatever failed, the connection leaves it.
            defer { if db.isInsideTransaction { try? db.rollback() } }
            let value = try body(db)
            try db.commit()
            return value
        }
    }

    /// `body` on the overflow connection's queue.
    func overflowRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            overflow.asyncUnsafeRead { database in
                continuation.resume(with: Result { try body(try database.get()) })
            }
        }
    }
}

/// One read-only connection, used by one thread at a time: whoever finds it free reads on its own thread.
final class InlineReader: Sendable {
    private let connection: DatabaseQueue
    private let lock = NSLock()

    init(_ connection: DatabaseQueue) {
        self.connection = connection
    }

    /// `body`'s result, or nil — nothing read — when another thread has the connection or SQLite answered
    /// SQLITE_BUSY (the connection never waits for a lock: its busy mode is an immediate error). The
    /// connection's own queue is idle whenever the lock is free, so the read runs on the calling thread.
    func tryRead<T>(_ body: (Database) throws -> T) -> Result<T, any Error>? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        do {
            return .success(try connection.unsafeRead(body))
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return nil
        } catch {
            return .failure(error)
        }
    }
}
