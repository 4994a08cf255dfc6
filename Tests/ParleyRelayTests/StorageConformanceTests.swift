import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// The relay's two storages, for suites that run against both.
enum StorageKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// How long a test's storage waits for a connection of its pool of 4. Tests run 30 and 40 requests at
    /// once on such a pool (to race them), each a few round trips; on a 2-core machine at a load average of
    /// 20 and more (the full suite, other builds) a round trip took tens of milliseconds and the last
    /// request waited for its lease well past the relay's 20 s. A stall (a connection never given back)
    /// still fails, after this.
    static let leaseTimeout = Duration.seconds(120)

    /// A fresh, empty storage of this kind for one test: a SQLite file in a temporary directory, or a new
    /// database in the test process's private PostgreSQL cluster (`PostgresCluster`).
    func withStorage<T>(_ body: (any RelayStorage, TemporaryDirectory) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory("storage-\(rawValue)")
        switch self {
        case .sqlite:
            return try await body(try SQLiteRelayStorage(path: directory.sub("relay.db")), directory)
        case .postgres:
            let cluster = try await PostgresCluster.ready()
            let storage = PostgresRelayStorage(location: try PostgresLocation(url: cluster.url(database: try await cluster.newDatabase())),
                                               connections: 4, leaseTimeout: StorageKind.leaseTimeout)
            defer { storage.close() }
            try await storage.migrate()
            return try await body(storage, directory)
        }
    }
}

/// What every `RelayStorage` does, run against SQLite and PostgreSQL alike: storages only store, and
/// their conditional writes (a device list that must still be the one checked, a limit, a single use) hold.
@Suite("Relay storage conformance (SQLite and PostgreSQL)")
struct StorageConformanceTests {
    static let alice = "alice@relay.test"
    let one = DeviceAddress(address: alice, deviceId: 1)
    let two = DeviceAddress(address: alice, deviceId: 2)

    @Test("an address is taken once; the account comes back as stored", arguments: StorageKind.allCases)
    func accounts(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            #expect(try await storage.createAccount(address: Self.alice, accountKey: [1, 2], deviceList: [3, 4]))
            #expect(try await !storage.createAccount(address: Self.alice, accountKey: [9], deviceList: [9]))
            #expect(try await storage.account(Self.alice) == StoredAccount(accountKey: [1, 2], deviceList: [3, 4]))
            #expect(try await storage.account("bob@relay.test") == nil)
            #expect(try await storage.deliveryAccessVerifier(of: Self.alice) == nil)
            try await storage.setDeliveryAccessVerifier([7, 7], for: Self.alice)
            #expect(try await storage.deliveryAccessVerifier(of: Self.alice) == [7, 7])
        }
    }

    @Test("a device list is replaced only if it is still the one read; the wiped devices lose tokens, prekeys and mail, the others keep them",
          arguments: StorageKind.allCases)
    func replaceDeviceList(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            for device in [one, two] {
                try await storage.storeToken(hash: [UInt8(device.deviceId)], device: device, expiresAt: .max / 2)
                #expect(try await storage.storePreKeys(for: device, signed: key(1), lastResort: key(2), oneTime: [key(5)], oneTimePQ: [key(6)], limit: 10))
            }
            #expect(try await storage.enqueue([(1, [1]), (2, [2])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 1000, mailboxLimit: 10) == .stored)

            #expect(try await !storage.replaceDeviceList(address: Self.alice, replacing: [99], with: [11], wiping: [1]))
            #expect(try await storage.account(Self.alice)?.deviceList == [10])
            #expect(try await storage.device(forTokenHash: [1], now: 2) == one)

            #expect(try await storage.replaceDeviceList(address: Self.alice, replacing: [10], with: [11], wiping: [1]))
            #expect(try await storage.account(Self.alice)?.deviceList == [11])
            #expect(try await storage.device(forTokenHash: [1], now: 2) == nil)
            #expect(try await storage.takeBundleKeys(for: one, oneTime: true) == nil)
            #expect(try await storage.fetch(for: one, now: 2, limit: 10, after: 0).messages.isEmpty)
            #expect(try await storage.device(forTokenHash: [2], now: 2) == two)
            #expect(try await storage.fetch(for: two, now: 2, limit: 10, after: 0).messages.map(\.envelope) == [[2]])
            #expect(try await storage.preKeyCounts(for: two) == (1, 1))
        }
    }

    @Test("an enqueue is stored all or nothing, in order, only under the list it was checked against and within the mailbox limit",
          arguments: StorageKind.allCases)
    func enqueue(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            #expect(try await storage.enqueue([(1, [1])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100, mailboxLimit: 3) == .unknownAccount)
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await storage.enqueue([(1, [1])], for: Self.alice, ifDeviceList: [11], now: 1, expiresAt: 100, mailboxLimit: 3) == .deviceListChanged)
            #expect(try await storage.enqueue([(1, [1]), (2, [9]), (1, [2]), (2, [9])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100,
                                              mailboxLimit: 3) == .stored)
            // Two more for device 1 would make 4: refused, and nothing of it is stored for device 2 either.
            #expect(try await storage.enqueue([(1, [3]), (2, [9]), (1, [4]), (2, [9])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100,
                                              mailboxLimit: 3) == .mailboxFull(deviceId: 1))
            #expect(try await storage.enqueue([(1, [3])], for: Self.alice, ifDeviceList: [10], now: 2, expiresAt: 100, mailboxLimit: 3) == .stored)
            let page = try await storage.fetch(for: one, now: 5, limit: 2, after: 0)
            #expect(page.messages.map(\.envelope) == [[1], [2]])
            #expect(page.more)
            #expect(page.messages[0].id < page.messages[1].id)
            let next = try await storage.fetch(for: one, now: 5, limit: 2, after: page.messages[1].id)
            #expect(next.messages.map(\.envelope) == [[3]] && !next.more)
            #expect(try await storage.fetch(for: two, now: 5, limit: 10, after: 0).messages.count == 2)
            // Expired mail is neither fetched nor kept.
            #expect(try await storage.fetch(for: one, now: 100, limit: 10, after: 0).messages.isEmpty)
            #expect(try await storage.purgeExpired(now: 100) == 5)
        }
    }

    @Test("acknowledging deletes from the device's own mailbox only, and can read the next page", arguments: StorageKind.allCases)
    func acknowledge(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            _ = try await storage.enqueue([(1, [1]), (2, [2]), (1, [3]), (2, [4])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 100,
                                          mailboxLimit: 10)
            let mine = try await storage.fetch(for: one, now: 2, limit: 10, after: 0).messages
            let theirs = try await storage.fetch(for: two, now: 2, limit: 10, after: 0).messages
            #expect(try await storage.acknowledge(theirs.map(\.id), for: one) == 0)
            let page = try await storage.acknowledge([mine[0].id], for: one, thenFetch: 10, after: 0, now: 2)
            #expect(page.messages.map(\.envelope) == [[3]])
            #expect(try await storage.acknowledge([mine[1].id], for: one) == 1)
            #expect(try await storage.fetch(for: two, now: 2, limit: 10, after: 0).messages == theirs)
        }
    }

    @Test("a challenge is taken once, and not after it expired; tokens expire and are revoked", arguments: StorageKind.allCases)
    func authentication(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            try await storage.storeChallenge([1], address: Self.alice, deviceId: 1, expiresAt: 10)
            try await storage.storeChallenge([2], address: Self.alice, deviceId: 2, expiresAt: 10)
            #expect(try await storage.takeChallenge([1], now: 5) == one)
            #expect(try await storage.takeChallenge([1], now: 5) == nil)
            #expect(try await storage.takeChallenge([2], now: 10) == nil)
            try await storage.storeToken(hash: [5], device: two, expiresAt: 10)
            #expect(try await storage.device(forTokenHash: [5], now: 9) == two)
            #expect(try await storage.device(forTokenHash: [5], now: 10) == nil)
            try await storage.revokeTokens(of: two)
            #expect(try await storage.device(forTokenHash: [5], now: 9) == nil)
        }
    }

    @Test("prekeys: the limit holds inside the upload, one-time keys are handed out lowest first and once", arguments: StorageKind.allCases)
    func preKeys(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            #expect(try await storage.takeBundleKeys(for: one, oneTime: true) == nil)
            #expect(try await storage.storePreKeys(for: one, signed: key(1), lastResort: key(2), oneTime: [key(7), key(5)], oneTimePQ: [key(6)], limit: 2))
            #expect(try await !storage.storePreKeys(for: one, signed: nil, lastResort: nil, oneTime: [key(8)], oneTimePQ: [], limit: 2))
            // Storing an id again replaces it and counts once.
            #expect(try await storage.storePreKeys(for: one, signed: nil, lastResort: nil, oneTime: [key(7)], oneTimePQ: [], limit: 2))
            #expect(try await storage.preKeyCounts(for: one) == (2, 1))
            let keys = try #require(try await storage.takeBundleKeys(for: one, oneTime: false))
            #expect(keys.signed == key(1) && keys.lastResort == key(2) && keys.oneTime == nil)
            let first = try #require(try await storage.takeBundleKeys(for: one, oneTime: true))
            #expect(first.oneTime == key(5) && first.oneTimePQ == key(6))
            let second = try #require(try await storage.takeBundleKeys(for: one, oneTime: true))
            #expect(second.oneTime?.id == 7 && second.oneTimePQ == nil)
            #expect(try await storage.preKeyCounts(for: one) == (0, 0))
        }
    }

    @Test("bundles taken at once never share a one-time prekey", arguments: StorageKind.allCases)
    func concurrentBundles(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.storePreKeys(for: one, signed: key(1), lastResort: key(2), oneTime: (1...20).map { key($0) }, oneTimePQ: [], limit: 100)
            let taken = try await withThrowingTaskGroup(of: UInt32?.self) { group in
                for _ in 0..<30 { group.addTask { try await storage.takeBundleKeys(for: one, oneTime: true)?.oneTime?.id } }
                return try await group.reduce(into: [UInt32?]()) { $0.append($1) }
            }
            #expect(taken.compactMap { $0 }.sorted() == Array(1...20))
        }
    }

    @Test("a provisioning slot is filled once and its message collected once", arguments: StorageKind.allCases)
    func provisioning(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            try await storage.createProvisioning(id: "slot", expiresAt: 100)
            #expect(try await storage.takeProvisioning(id: "slot", now: 1) == .waiting)
            #expect(try await storage.takeProvisioning(id: "other", now: 1) == .unknown)
            let fills = try await withThrowingTaskGroup(of: Bool.self) { group in
                for n in 0..<8 { group.addTask { try await storage.fillProvisioning(id: "slot", message: [UInt8(n)], now: 1) } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(fills.filter { $0 }.count == 1)
            let takes = try await withThrowingTaskGroup(of: ProvisioningState.self) { group in
                for _ in 0..<8 { group.addTask { try await storage.takeProvisioning(id: "slot", now: 2) } }
                return try await group.reduce(into: [ProvisioningState]()) { $0.append($1) }
            }
            #expect(takes.filter { if case .filled = $0 { true } else { false } }.count == 1)
            #expect(takes.allSatisfy { if case .filled = $0 { true } else { $0 == .unknown || $0 == .waiting } })
            #expect(try await storage.takeProvisioning(id: "slot", now: 2) == .unknown)
            try await storage.createProvisioning(id: "late", expiresAt: 10)
            #expect(try await !storage.fillProvisioning(id: "late", message: [1], now: 10))
        }
    }

    @Test("attachment slots and quotas", arguments: StorageKind.allCases)
    func attachments(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            let quota = AttachmentQuota(bytes: 100, slots: 2)
            #expect(try await storage.chargeAttachmentQuota(account: Self.alice, window: 1, bytes: 60, limits: quota))
            #expect(try await !storage.chargeAttachmentQuota(account: Self.alice, window: 1, bytes: 41, limits: quota))
            #expect(try await storage.chargeAttachmentQuota(account: Self.alice, window: 1, bytes: 40, limits: quota))
            #expect(try await !storage.chargeAttachmentQuota(account: Self.alice, window: 1, bytes: 0, limits: quota))
            #expect(try await storage.chargeAttachmentQuota(account: Self.alice, window: 2, bytes: 100, limits: quota))
            try await storage.createAttachment(id: "a", uploadSecretHash: [1], size: 10, expiresAt: 50)
            #expect(try await storage.attachment("a", now: 1) == StoredAttachment(size: 10, complete: false, uploadSecretHash: [1]))
            try await storage.markAttachmentComplete("a")
            #expect(try await storage.attachment("a", now: 1)?.complete == true)
            #expect(try await storage.attachment("a", now: 50) == nil)
            #expect(try await storage.expiredAttachments(now: 50) == ["a"])
            try await storage.deleteAttachment("a")
            #expect(try await storage.expiredAttachments(now: 50) == [])
        }
    }

    private func key(_ id: UInt32) -> StoredSignedKey {
        StoredSignedKey(id: id, key: [UInt8(truncatingIfNeeded: id)], signature: [UInt8(truncatingIfNeeded: id), 0])
    }
}
