internal import GRDB

extension SQLiteRelayStorage {
    /// The writer connection's page cache, in KiB. SQLite's default (2 MB) holds less than the mailbox
    /// index a commit to 1,000 devices touches when their mailboxes hold a few dozen entries each (an entry
    /// per device, each in another page of the index): in the groups benchmark each added member cost the
    /// relay about 2.3 MB of reads of pages it had evicted (counted with strace; none with this cache).
    static let writerCacheKiB = 16 * 1024

    /// Settings of the one writer connection, besides durability (`requireDurableCommits`) and the log's
    /// bound (`boundWriteAheadLog`):
    /// * statement journals in memory (`temp_store = MEMORY`). An INSERT that fires the mailbox_counts
    ///   trigger inside a transaction keeps a copy of every page it changes, in case it must be undone
    ///   alone; past 64 KiB SQLite wrote that copy to a temporary file, 2.5–4 MB of writes per commit to
    ///   1,000 devices (counted with strace), never read back unless the statement failed. Nothing durable
    ///   is in it: the transaction itself still commits through the write-ahead log.
    /// * a page cache of `writerCacheKiB`.
    static func keepWriterWorkInMemory(_ db: Database) throws {
        try db.execute(sql: "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -\(writerCacheKiB)")
    }
}
