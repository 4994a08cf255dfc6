import Foundation
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// Rules of the mailbox that must hold when two relay nodes write at once (SQLite and PostgreSQL alike):
/// the PostgreSQL storage makes a send and an acknowledgement one statement each, and these say that
/// doing so lost none of what the longer transactions kept.
@Suite("Storage races (SQLite and PostgreSQL)")
struct StorageRaceConformanceTests {
    static let alice = "alice@relay.test"
    let one = DeviceAddress(address: alice, deviceId: 1)
    let two = DeviceAddress(address: alice, deviceId: 2)

    @Test("sends through two nodes at once never pass the mailbox limit, and ids follow the order they were stored in",
          arguments: StorageKind.allCases)
    func concurrentSendsKeepTheLimit(kind: StorageKind) async throws {
        try await kind.withTwoNodes { first, second in
            _ = try await first.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            let results = try await withThrowingTaskGroup(of: EnqueueResult.self) { group in
                for n in 0..<24 {
                    let node = n.isMultiple(of: 2) ? first : second
                    group.addTask {
                        try await node.enqueue([(1, [UInt8(n)])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100, mailboxLimit: 10)
                    }
                }
                return try await group.reduce(into: [EnqueueResult]()) { $0.append($1) }
            }
            #expect(results.filter { $0 == .stored }.count == 10, "\(results)")
            #expect(results.filter { $0 == .mailboxFull(deviceId: 1) }.count == 14, "\(results)")
            let page = try await second.fetch(for: one, now: 2, limit: 100, after: 0)
            #expect(page.messages.count == 10)
            #expect(page.messages.map(\.id) == page.messages.map(\.id).sorted())
        }
    }

    @Test("the last two recipients acknowledging a group message at once, through two nodes, remove its copy", arguments: StorageKind.allCases)
    func concurrentLastAcknowledgements(kind: StorageKind) async throws {
        try await kind.withTwoNodes { first, second in
            _ = try await first.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            let groupId = [UInt8](repeating: 7, count: 32)
            #expect(try await first.createGroup(groupId, verifier: [0]))
            for round in 0..<20 {
                #expect(try await first.storeGroupMessage(GroupMessageWrite(groupId: groupId, epoch: 0, nextVerifier: nil, message: [UInt8(round)],
                                                                            recipients: [one, two], deviceLists: [Self.alice: [10]], now: 1,
                                                                            expiresAt: 1000, mailboxLimit: 100)) == .stored)
                let mine = try await first.fetch(for: one, now: 2, limit: 10, after: 0, groups: true).messages.map(\.id)
                let theirs = try await second.fetch(for: two, now: 2, limit: 10, after: 0, groups: true).messages.map(\.id)
                // One plain acknowledgement, one that reads the next page: both ways of acknowledging.
                async let a = first.acknowledge(mine, for: one)
                async let b = second.acknowledge(theirs, for: two, thenFetch: 10, after: 0, now: 2, groups: true)
                let (deleted, page) = try await (a, b)
                #expect(deleted == 1 && page.acknowledged == 1 && page.messages.isEmpty)
                let census = try await GroupStorageConformanceTests.census(first)
                #expect(census.copies == 0 && census.entries == 0, "round \(round): \(census)")
            }
        }
    }

    @Test("an account and its delivery access verifier are read together as stored", arguments: StorageKind.allCases)
    func accountForDelivery(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            #expect(try await storage.accountForDelivery(Self.alice) == nil)
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1, 2], deviceList: [3, 4])
            var read = try #require(try await storage.accountForDelivery(Self.alice))
            #expect(read.account == StoredAccount(accountKey: [1, 2], deviceList: [3, 4]) && read.verifier == nil)
            try await storage.setDeliveryAccessVerifier([7, 7], for: Self.alice)
            read = try #require(try await storage.accountForDelivery(Self.alice))
            #expect(read.verifier == [7, 7])
        }
    }
}
