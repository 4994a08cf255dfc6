import Foundation
import GRDB
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport
import Testing

/// Disappearing messages and retention at the store: due messages are found by their time, deleted in one
/// transaction, and leave none of their bytes in the database file, its write-ahead log or its index.
@Suite struct ExpiryTests {
    let directory = try! TemporaryDirectory("expiry")
    var path: String { directory.sub("parley.db") }

    private func expiring(_ text: String, _ n: Int, at: UInt64?) -> MessageRecord {
        var record = message(text, n)
        record.expiresAt = at
        return record
    }

    /// Every byte of the store's files: the database, its write-ahead log and its shared-memory index.
    private func filesOnDisk() -> [(String, Data)] {
        ["", "-wal", "-shm"].map { (path + $0, fileBytes(path + $0)) }
    }

    @Test("expired messages are deleted with their cells overwritten: no sealed cell of theirs stays in the file, the WAL or the shm")
    func expiredCellsLeaveNothingOnDisk() throws {
        let store = try makeStore(path)
        #expect(try store.securelyDeletes())
        let marker = "MARKER-7f3a-expires"
        // Enough messages that their pages are written and rewritten, one kept to show the search finds cells.
        var records: [MessageRecord] = []
        for n in 1...40 { records.append(expiring("\(marker) \(n) " + String(repeating: "x", count: 200), n, at: 1_800_000_060_000)) }
        records.append(expiring("kept for ever", 41, at: nil))
        try store.insertMessages(records)
        try store.checkpoint()   // the cells now lie in the database file itself
        let cells = try raw(path) { db in
            try Row.fetchAll(db, sql: "SELECT body, state FROM messages WHERE id <= 40").flatMap { [$0["body"] as Data, $0["state"] as Data] }
        }
        let kept = try rawCell(path, "SELECT body FROM messages WHERE id = 41")
        #expect(cells.count == 80)
        #expect(filesOnDisk().contains { $0.1.range(of: cells[0]) != nil }, "the check finds a cell while it is stored")
        // More writes after the checkpoint, so the WAL holds copies of the pages too.
        try store.updateState(of: 1, to: .seen)

        #expect(try store.nextExpiry() == 1_800_000_060_000)
        #expect(try store.deleteExpiredMessages(now: 1_800_000_059_999).isEmpty, "not due yet")
        let deleted = try store.deleteExpiredMessages(now: 1_800_000_060_000)
        #expect(deleted.count == 40 && deleted.allSatisfy { $0.text.hasPrefix(marker) })
        #expect(try store.messages(with: "bob@relay.test").map(\.text) == ["kept for ever"])
        #expect(try store.nextExpiry() == nil)

        for (file, bytes) in filesOnDisk() {
            for cell in cells { #expect(bytes.range(of: cell) == nil, "a deleted cell's bytes are still in \(file)") }
            #expect(bytes.range(of: Data(marker.utf8)) == nil)
        }
        #expect(fileBytes(path + "-wal").isEmpty, "the write-ahead log was checkpointed and truncated")
        #expect(fileBytes(path).range(of: kept) != nil, "the message kept is still there")
    }

    @Test("retention deletes every message stored before the cutoff, the same way")
    func retentionDeletesOlderMessages() throws {
        let store = try makeStore(path)
        try store.insertMessages((1...5).map { message("message \($0)", $0) })
        try store.checkpoint()
        let old = try rawCell(path, "SELECT body FROM messages WHERE id = 2")
        let deleted = try store.deleteExpiredMessages(now: 1_800_000_100_000, receivedBefore: 1_800_000_000_004)
        #expect(deleted.map(\.text) == ["message 1", "message 2", "message 3"])
        #expect(try store.messages(with: "bob@relay.test").map(\.text) == ["message 4", "message 5"])
        for (file, bytes) in filesOnDisk() { #expect(bytes.range(of: old) == nil, "in \(file)") }
    }

    @Test("a message that reuses a deleted message's id does not inherit its deletion time")
    func deletionTimeGoesWithItsMessage() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("first", 1), expiring("second", 2, at: 1_800_000_001_000)])
        #expect(try store.deleteMessage(sentBy: try AccountAddress("bob@relay.test"), clientMessageId: message("", 2).clientMessageId))
        try store.insertMessages([message("third", 3)])   // id 2 again
        #expect(try store.nextExpiry() == nil)
        #expect(try store.deleteExpiredMessages(now: 1_800_000_002_000).isEmpty)
        #expect(try store.messages(with: "bob@relay.test").map(\.text) == ["first", "third"])
        #expect(try store.messages(with: "bob@relay.test").map(\.expiresAt) == [nil, nil])
    }

    @Test("a stored message reads back with its deletion time")
    func deletionTimeReadsBack() throws {
        let store = try makeStore(path)
        try store.insertMessages([expiring("soon", 1, at: 1_800_000_001_000)])
        #expect(try store.messages(with: "bob@relay.test").map(\.expiresAt) == [1_800_000_001_000])
    }
}

/// Decrypted attachment files of disappeared messages: overwritten before they are unlinked.
@Suite struct SecureEraseTests {
    let directory = try! TemporaryDirectory("erase")

    @Test("the file's bytes are zeros before its name goes (a second hard link shows the blocks as they were left)")
    func overwritesBeforeUnlinking() throws {
        let path = directory.sub("photo.jpg"), witness = directory.sub("witness")
        let secret = Data((0..<70_000).map { UInt8($0 % 251 + 1) })
        try secret.write(to: URL(fileURLWithPath: path))
        #expect(link(path, witness) == 0)
        #expect(SecureErase.file(at: path))
        #expect(!fileExists(path))
        let left = fileBytes(witness)
        #expect(left.count == secret.count && left.allSatisfy { $0 == 0 })
    }

    @Test("a directory of copies: every file overwritten, the directory gone; a symbolic link is not followed")
    func directoryAndLinks() throws {
        let root = directory.sub("copies"), outside = directory.sub("outside.txt")
        try FileManager.default.createDirectory(atPath: root + "/1", withIntermediateDirectories: true)
        try Data("secret one".utf8).write(to: URL(fileURLWithPath: root + "/1/a.txt"))
        try Data("not Parley's".utf8).write(to: URL(fileURLWithPath: outside))
        try FileManager.default.createSymbolicLink(atPath: root + "/1/link", withDestinationPath: outside)
        let witness = directory.sub("witness-a")
        #expect(link(root + "/1/a.txt", witness) == 0)
        SecureErase.directory(at: root)
        #expect(!fileExists(root))
        #expect(fileBytes(witness) == Data(repeating: 0, count: 10))
        #expect(fileBytes(outside) == Data("not Parley's".utf8))
    }
}
