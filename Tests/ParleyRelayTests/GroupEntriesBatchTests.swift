import Foundation
import GRDB
import ParleyProtocol
@testable import ParleyRelay
import Testing

/// A group send's mailbox entries on SQLite are written by multi-row INSERTs (issue #22, item 6: one statement
/// per recipient was a large part of the relay's accepting a commit to 1,000 devices). Counted in statements,
/// not timed; and the entries are exactly those one INSERT per recipient wrote: one per device, in the
/// recipients' order, counted against each mailbox's limit.
@Suite("Group send entries in batches (SQLite)")
struct GroupEntriesBatchTests {
    let groupId = [UInt8](repeating: 9, count: 32)

    /// `accounts` accounts of `perAccount` devices each, their lists, and the devices in a shuffled (but fixed) order.
    static func recipients(_ storage: SQLiteRelayStorage, accounts: Int, perAccount: Int) async throws -> ([DeviceAddress], [String: [UInt8]]) {
        var lists: [String: [UInt8]] = [:]
        var devices: [DeviceAddress] = []
        for account in 0..<accounts {
            let address = "member\(account)@relay.test"
            _ = try await storage.createAccount(address: address, accountKey: [1], deviceList: [UInt8(account % 256), UInt8(account / 256)])
            lists[address] = [UInt8(account % 256), UInt8(account / 256)]
            devices += (1...perAccount).map { DeviceAddress(address: address, deviceId: UInt32($0)) }
        }
        // A fixed permutation, so that the recipients' order is not the accounts' (nor the index's) order.
        let order = devices.indices.sorted { ($0 &* 7919) % devices.count < ($1 &* 7919) % devices.count }
        return (order.map { devices[$0] }, lists)
    }

    func write(_ devices: [DeviceAddress], _ lists: [String: [UInt8]], epoch: UInt64 = 0, limit: Int) -> GroupMessageWrite {
        GroupMessageWrite(groupId: groupId, epoch: epoch, nextVerifier: nil, message: [0xAB, 0xCD], recipients: devices, deviceLists: lists,
                          now: 5, expiresAt: 5_000, mailboxLimit: limit)
    }

    @Test("a send to 1,000 devices takes a few statements, not one per recipient")
    func fewStatements() async throws {
        let directory = try TemporaryDirectory("entries-batch")
        let storage = try SQLiteRelayStorage(path: directory.sub("relay.db"))
        let (devices, lists) = try await Self.recipients(storage, accounts: 100, perAccount: 10)
        #expect(try await storage.createGroup(groupId, verifier: [0]))
        let statements = StatementCount()
        try await storage.database.write { db in
            db.trace(options: .statement) { event in
                // Statements a trigger runs are reported as comments ("-- TRIGGER …"): counted apart.
                if case .statement(let statement) = event, !statement.sql.hasPrefix("--") { statements.add() }
            }
        }
        #expect(try await storage.storeGroupMessage(write(devices, lists, limit: 10)) == .stored)
        try await storage.database.write { db in db.trace(options: []) { _ in } }
        #expect(statements.value > 0, "the trace saw the send")
        #expect(statements.value <= 40, "\(statements.value) statements for 1,000 mailbox entries")
    }

    @Test("the writer keeps statement journals in memory and a page cache of 16 MiB (SQLiteRelayStorage+WriterMemory.swift)")
    func writerSettings() async throws {
        let directory = try TemporaryDirectory("entries-batch")
        let storage = try SQLiteRelayStorage(path: directory.sub("relay.db"))
        let settings = try await storage.database.writeWithoutTransaction { db in
            (try Int.fetchOne(db, sql: "PRAGMA temp_store"), try Int.fetchOne(db, sql: "PRAGMA cache_size"))
        }
        #expect(settings.0 == 2, "temp_store is MEMORY (2)")
        #expect(settings.1 == -16 * 1024, "cache_size is 16 MiB")
    }

    @Test("one entry per recipient, in the recipients' order, for counts on and off the batch sizes", arguments: [1, 2, 3, 127, 128, 129, 255, 300, 1000])
    func entriesAsBefore(count: Int) async throws {
        let directory = try TemporaryDirectory("entries-batch")
        let storage = try SQLiteRelayStorage(path: directory.sub("relay.db"))
        let (all, lists) = try await Self.recipients(storage, accounts: (count + 9) / 10, perAccount: 10)
        let devices = Array(all.prefix(count))
        let used = lists.filter { list in devices.contains { $0.address == list.key } }
        #expect(try await storage.createGroup(groupId, verifier: [0]))
        #expect(try await storage.storeGroupMessage(write(devices, used, limit: 1)) == .stored)
        #expect(try await GroupStorageConformanceTests.census(storage).entries == count)
        var ids: [Int64] = []
        for device in devices {
            let page = try await storage.fetch(for: device, now: 6, limit: 10, after: 0, groups: true)
            #expect(page.messages.count == 1, "\(device.address)#\(device.deviceId) has \(page.messages.count) entries")
            guard let entry = page.messages.first else { continue }
            #expect(entry.group?.message == [0xAB, 0xCD] && entry.receivedAt == 5)
            ids.append(entry.id)
        }
        #expect(ids == ids.sorted() && Set(ids).count == count, "ids ascend in the recipients' order")
        // Each entry counts against its mailbox: at a limit of one, the next send is refused for the first recipient.
        #expect(try await storage.storeGroupMessage(write(devices, used, limit: 1)) == .mailboxFull(devices[0]))
        #expect(try await storage.storeGroupMessage(write(devices, used, limit: 2)) == .stored)
        #expect(try await storage.purgeExpired(now: 5_000) == 2 * count, "every entry carries the send's expiry")
    }
}

/// A counter the trace callback (run on the writer's connection) adds to.
final class StatementCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
