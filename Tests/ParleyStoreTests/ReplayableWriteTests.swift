import Testing
import Foundation
import GRDB
@testable import ParleyStore
import ParleyTestSupport

/// Filing the inbox and clearing the outbox commit without an fsync; every other write must stay durable.
@Suite struct ReplayableWriteTests {
    private func synchronous(_ db: Database) throws -> Int { try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }

    @Test("writes are durable (synchronous = FULL, which GRDB's WAL set-up had lowered to NORMAL); a replayable write runs at NORMAL, and the writes after it are FULL again")
    func restoresFull() throws {
        let dir = try! TemporaryDirectory("store")
        let store = try makeStore(dir.sub("parley.db"))
        #expect(try store.write { try synchronous($0) } == 2)
        #expect(try store.writeReplayable { try synchronous($0) } == 1)
        #expect(try store.write { try synchronous($0) } == 2)
    }

    @Test("a replayable write that fails rolls back and also leaves the connection at FULL")
    func failureRestoresFull() throws {
        let dir = try! TemporaryDirectory("store")
        let store = try makeStore(dir.sub("parley.db"))
        struct Refused: Error {}
        #expect(throws: StoreError.self) {
            try store.writeReplayable { db in
                try db.execute(sql: "CREATE TABLE scratch (x)")
                throw Refused()
            }
        }
        #expect(try store.write { try synchronous($0) } == 2)
        #expect(try store.write { try Bool.fetchOne($0, sql: "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'scratch'") } == false)
    }
}
