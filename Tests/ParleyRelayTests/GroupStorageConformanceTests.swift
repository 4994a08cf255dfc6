import Foundation
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// The MLS delivery service's storage (PROTOCOL.md §17), on SQLite and PostgreSQL alike: KeyPackages
/// consumed once, one commit per epoch even from two nodes at once, a group message stored once.
@Suite("Group storage conformance (SQLite and PostgreSQL)")
struct GroupStorageConformanceTests {
    static let alice = "alice@relay.test"
    let one = DeviceAddress(address: alice, deviceId: 1)
    let two = DeviceAddress(address: alice, deviceId: 2)
    let groupId = [UInt8](repeating: 7, count: 32)

    @Test("KeyPackages: stored within the limit, claimed oldest first and once, then the last-resort one, which stays",
          arguments: StorageKind.allCases)
    func keyPackages(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            #expect(try await storage.storeKeyPackages([[1], [2], [3]], lastResort: [9], for: one, limit: 5))
            #expect(try await !storage.storeKeyPackages([[4], [5], [6]], lastResort: [8], for: one, limit: 5), "6 would pass the limit of 5")
            #expect(try await Self.stock(storage, one) == "3 and a last-resort one", "the refused upload stored nothing, not even its last-resort package")
            #expect(try await Self.stock(storage, two) == "0")
            #expect(try await Self.claim(storage, two) == "none")
            var claims: [String] = []
            for _ in 0..<5 { claims.append(try await Self.claim(storage, one)) }
            #expect(claims == ["[1]", "[2]", "[3]", "[9] last resort", "[9] last resort"], "the last-resort package is not consumed")
            #expect(try await storage.storeKeyPackages([], lastResort: [10], for: one, limit: 5))
            #expect(try await Self.claim(storage, one) == "[10] last resort", "a new last-resort package replaces the old")
        }
    }

    static func claim(_ storage: any RelayStorage, _ device: DeviceAddress) async throws -> String {
        guard let claimed = try await storage.claimKeyPackage(for: device) else { return "none" }
        return "\(claimed.package)" + (claimed.lastResort ? " last resort" : "")
    }

    static func stock(_ storage: any RelayStorage, _ device: DeviceAddress) async throws -> String {
        let stock = try await storage.keyPackageCount(for: device)
        return "\(stock.count)" + (stock.lastResort ? " and a last-resort one" : "")
    }

    @Test("two concurrent claims never get the same KeyPackage; a revoked device's packages go with it", arguments: StorageKind.allCases)
    func concurrentClaims(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            let packages = (1...30).map { [UInt8($0)] }
            #expect(try await storage.storeKeyPackages(packages, lastResort: [0], for: one, limit: 100))
            let claims = try await withThrowingTaskGroup(of: ([UInt8], Bool)?.self) { group in
                for _ in 0..<40 { group.addTask { try await storage.claimKeyPackage(for: one) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let consumed = claims.compactMap { $0 }.filter { !$0.1 }.map(\.0)
            #expect(Set(consumed).count == consumed.count, "a package handed out twice")
            #expect(consumed.count == 30 || Set(consumed).isSubset(of: Set(packages)))
            #expect(try await storage.keyPackageCount(for: one).count == 30 - consumed.count)
            #expect(claims.allSatisfy { $0 != nil })

            #expect(try await storage.storeKeyPackages([[1]], lastResort: [2], for: two, limit: 100))
            #expect(try await storage.replaceDeviceList(address: Self.alice, replacing: [10], with: [11], wiping: [2]))
            #expect(try await Self.stock(storage, two) == "0")
        }
    }

    @Test("a group starts at epoch 0; a commit is stored only at the group's epoch, which it advances; a send only at the current epoch",
          arguments: StorageKind.allCases)
    func epochs(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await storage.createGroup(groupId, verifier: [0xA0]))
            #expect(try await !storage.createGroup(groupId, verifier: [0xA1]), "an id is registered once")
            #expect(try await storage.group(groupId) == StoredGroup(epoch: 0, verifier: [0xA0]))
            #expect(try await storage.group([1, 2]) == nil)

            #expect(try await storage.storeGroupMessage(write(epoch: 0, commit: [0xB1], to: [one])) == .stored)
            #expect(try await storage.group(groupId) == StoredGroup(epoch: 1, verifier: [0xB1]))
            #expect(try await storage.storeGroupMessage(write(epoch: 0, commit: [0xB2], to: [one])) == .epochIs(1), "a second commit for epoch 0")
            #expect(try await storage.storeGroupMessage(write(epoch: 0, to: [one])) == .epochIs(1), "a send for a past epoch")
            #expect(try await storage.storeGroupMessage(write(epoch: 1, to: [one])) == .stored)
            #expect(try await storage.storeGroupMessage(write(group: [3, 3], epoch: 0, to: [one])) == .unknownGroup)
            #expect(try await storage.group(groupId) == StoredGroup(epoch: 1, verifier: [0xB1]))
            let page = try await storage.fetch(for: one, now: 2, limit: 10, after: 0, groups: true)
            #expect(page.messages.map(\.group) == [StoredGroupMessage(groupId: groupId, epoch: 0, isCommit: true, message: [0xCC]),
                                                   StoredGroupMessage(groupId: groupId, epoch: 1, isCommit: false, message: [0xCC])])
        }
    }

    @Test("of two commits for one epoch from two nodes at once, exactly one is stored, 50 epochs running", arguments: StorageKind.allCases)
    func concurrentCommits(kind: StorageKind) async throws {
        try await kind.withTwoNodes { first, second in
            _ = try await first.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await first.createGroup(groupId, verifier: [0]))
            for epoch in UInt64(0)..<50 {
                async let a = first.storeGroupMessage(write(epoch: epoch, commit: [1, UInt8(epoch)], to: [one], mailboxLimit: 100))
                async let b = second.storeGroupMessage(write(epoch: epoch, commit: [2, UInt8(epoch)], to: [one], mailboxLimit: 100))
                let results = try await [a, b]
                #expect(results.filter { $0 == .stored }.count == 1, "epoch \(epoch): \(results)")
                #expect(results.filter { $0 == .epochIs(epoch + 1) }.count == 1, "epoch \(epoch): \(results)")
            }
            #expect(try await second.group(groupId)?.epoch == 50)
            let page = try await first.fetch(for: one, now: 2, limit: 100, after: 0, groups: true)
            #expect(page.messages.compactMap(\.group?.epoch) == Array(0..<50), "one commit per epoch, in order")
        }
    }

    @Test("a group message to 100 devices is stored once, with 100 mailbox entries; the copy goes with the last acknowledgement",
          arguments: StorageKind.allCases)
    func storedOnce(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            var lists: [String: [UInt8]] = [:]
            var devices: [DeviceAddress] = []
            for account in 0..<10 {
                let address = "member\(account)@relay.test"
                _ = try await storage.createAccount(address: address, accountKey: [1], deviceList: [UInt8(account)])
                lists[address] = [UInt8(account)]
                devices += (1...10).map { DeviceAddress(address: address, deviceId: UInt32($0)) }
            }
            #expect(try await storage.createGroup(groupId, verifier: [0]))
            let message = [UInt8](repeating: 0x5A, count: 4000)
            #expect(try await storage.storeGroupMessage(GroupMessageWrite(groupId: groupId, epoch: 0, nextVerifier: nil, message: message,
                                                                          recipients: devices, deviceLists: lists, now: 1, expiresAt: 1000,
                                                                          mailboxLimit: 10)) == .stored)
            var census = try await Self.census(storage)
            #expect(census.copies == 1 && census.entries == 100 && census.bytes == 4000, "\(census)")

            for device in devices.dropLast() {
                let page = try await storage.fetch(for: device, now: 2, limit: 10, after: 0, groups: true)
                #expect(page.messages.count == 1 && page.messages[0].group?.message == message)
                #expect(try await storage.acknowledge(page.messages.map(\.id), for: device) == 1)
            }
            census = try await Self.census(storage)
            #expect(census.copies == 1 && census.entries == 1, "one recipient has not acknowledged: \(census)")
            let last = try #require(devices.last)
            let page = try await storage.acknowledge([], for: last, thenFetch: 10, after: 0, now: 2, groups: true)
            _ = try await storage.acknowledge(page.messages.map(\.id), for: last, thenFetch: 10, after: 0, now: 2, groups: true)
            census = try await Self.census(storage)
            #expect(census.copies == 0 && census.entries == 0, "\(census)")
        }
    }

    @Test("group entries sit among 1:1 envelopes in order (version 2), version 1 leaves them out; they share the mailbox limit and expiry",
          arguments: StorageKind.allCases)
    func mailboxRules(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await storage.createGroup(groupId, verifier: [0]))
            #expect(try await storage.enqueue([(1, [1])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100, mailboxLimit: 3) == .stored)
            #expect(try await storage.storeGroupMessage(write(epoch: 0, to: [one, two], expiresAt: 100)) == .stored)
            #expect(try await storage.enqueue([(1, [2])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100, mailboxLimit: 3) == .stored)
            let withGroups = try await storage.fetch(for: one, now: 2, limit: 10, after: 0, groups: true).messages
            #expect(withGroups.map(\.envelope) == [[1], [], [2]])
            #expect(withGroups.map { $0.group != nil } == [false, true, false])
            #expect(try await storage.fetch(for: one, now: 2, limit: 10, after: 0).messages.map(\.envelope) == [[1], [2]])

            #expect(try await storage.storeGroupMessage(write(epoch: 0, to: [two, one], expiresAt: 100)) == .mailboxFull(one),
                    "device 1 holds 3 of 3")
            #expect(try await storage.fetch(for: two, now: 2, limit: 10, after: 0, groups: true).messages.count == 1, "nothing of the refused send")
            #expect(try await storage.storeGroupMessage(write(epoch: 0, to: [two], lists: [Self.alice: [99]])) == .deviceListChanged)

            #expect(try await storage.purgeExpired(now: 100) == 4)
            let census = try await Self.census(storage)
            #expect(census.copies == 0 && census.entries == 0, "\(census)")
        }
    }

    private func write(group: [UInt8]? = nil, epoch: UInt64, commit next: [UInt8]? = nil, to recipients: [DeviceAddress],
                       lists: [String: [UInt8]] = [alice: [10]], expiresAt: UInt64 = 1000, mailboxLimit: Int = 3) -> GroupMessageWrite {
        GroupMessageWrite(groupId: group ?? groupId, epoch: epoch, nextVerifier: next, message: [0xCC], recipients: recipients,
                          deviceLists: lists, now: 1, expiresAt: expiresAt, mailboxLimit: mailboxLimit)
    }

    static func census(_ storage: any RelayStorage) async throws -> (copies: Int, bytes: Int, entries: Int) {
        if let sqlite = storage as? SQLiteRelayStorage { return try await sqlite.groupMessageCensus() }
        return try await (storage as! PostgresRelayStorage).groupMessageCensus()
    }
}

extension StorageKind {
    /// Two storages on one database, as two relay nodes: two pools on one PostgreSQL database, or two on one
    /// SQLite file.
    func withTwoNodes(_ body: (any RelayStorage, any RelayStorage) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("storage-\(rawValue)")
        switch self {
        case .sqlite:
            try await body(try SQLiteRelayStorage(path: directory.sub("relay.db")), try SQLiteRelayStorage(path: directory.sub("relay.db")))
        case .postgres:
            let cluster = try await PostgresCluster.ready()
            let location = try PostgresLocation(url: cluster.url(database: try await cluster.newDatabase()))
            let first = PostgresRelayStorage(location: location, connections: 4, leaseTimeout: StorageKind.leaseTimeout)
            let second = PostgresRelayStorage(location: location, connections: 4, leaseTimeout: StorageKind.leaseTimeout)
            defer { first.close(); second.close() }
            try await first.migrate()
            try await second.migrate()
            try await body(first, second)
        }
    }
}
