public import GRDB

/// The durability rules both of Parley's SQLite files follow (the client's store and the relay's
/// mailboxes, each in WAL mode): every commit waits for the disk, except the few whose loss a power failure
/// could only turn into a repeat that is recognised (see the callers), which commit without waiting.
extension Database {
    /// Makes every commit on this connection wait for the disk (`synchronous = FULL`), and checks that it
    /// took. Run on the writer after the pool is open: GRDB's WAL set-up lowers it to NORMAL after any
    /// `prepareDatabase` hook has run.
    public func requireDurableCommits() throws {
        try execute(sql: "PRAGMA synchronous = FULL")
        guard try Int.fetchOne(self, sql: "PRAGMA synchronous") == 2 else {
            throw DatabaseError(message: "cannot make commits durable (PRAGMA synchronous = FULL did not take)")
        }
    }

    /// Runs `body` in one transaction that commits without waiting for the disk (`synchronous = NORMAL`
    /// for this transaction only). WAL keeps it behind every earlier commit and the next durable commit
    /// syncs it too, so a power failure can undo it but nothing after it; a crash of the process alone
    /// loses nothing. The connection is never left non-durable: restoring FULL is part of the call.
    public func inTransactionWithoutWaitingForDisk<R>(_ body: () throws -> R) throws -> R {
        try execute(sql: "PRAGMA synchronous = NORMAL")
        var result: R?
        do {
            try inTransaction {
                result = try body()
                return .commit
            }
        } catch {
            try execute(sql: "PRAGMA synchronous = FULL")    // a failure here is reported, not swallowed
            throw error
        }
        try execute(sql: "PRAGMA synchronous = FULL")
        return result!
    }
}
