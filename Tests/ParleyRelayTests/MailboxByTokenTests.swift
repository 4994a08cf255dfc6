import Foundation
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A fetch or an acknowledgement by a token the relay node has seen has its token checked in the mailbox's
/// own read (`RelayStorage.acknowledge(_:forTokenHash:thenFetch:…)`): one storage call per request, and on
/// PostgreSQL one statement, where the check was a call of its own. A token the node has not seen yet is
/// checked alone first, as before. Counted with the relay's storage metrics (`--metrics`).
@Suite struct MailboxByTokenTests {
    @Test("a known token's fetch and acknowledgement are one storage call each; a token's first request checks it alone first",
          arguments: StorageKind.allCases)
    func oneStorageCallPerRequest(kind: StorageKind) async throws {
        let directory = try TemporaryDirectory("mailbox-token")
        let metricsPort = try RelayProcess.freePort()
        var arguments = ["--metrics", "127.0.0.1:\(metricsPort)"]
        if kind == .postgres {
            let cluster = try await PostgresCluster.ready()
            arguments += ["--database", cluster.url(database: try await cluster.newDatabase())]
        }
        let relay = try await RelayProcess.start(in: directory, arguments: arguments)
        defer { relay.kill(SIGKILL) }
        let raw = RawHTTP(relay)
        let bob = try await RawDevice.register("bob", on: relay)
        for index in 0..<3 { #expect(try await bob.send(Array("sealed \(index)".utf8), on: relay).status == 204) }

        let queued = try await raw.mailbox(token: bob.token)
        #expect(queued.count == 3)
        let acknowledged = try await raw.request(.POST, "/v1/mailbox/ack?fetch=100", json: AckRequest(ids: queued.prefix(2).map(\.id)),
                                                 token: bob.token)
        #expect(acknowledged.status == 200)
        #expect(try acknowledged.decode(FetchResponse.self).messages.map(\.id) == [queued[2].id])
        #expect(try await raw.mailbox(token: bob.token).map(\.id) == [queued[2].id])

        let metrics = try await RelayMetricsTests.scrape(port: metricsPort)
        func calls(_ operation: String) -> Double? { RelayMetricsTests.value(metrics, "parley_relay_storage_seconds_count", ["operation": operation]) }
        #expect(calls("device_for_token") == 1, "only the token's first request checks it alone")
        #expect(calls("fetch") == 1)
        #expect(calls("acknowledge_fetch_by_token") == 2, "the acknowledgement and the second fetch")

        // A token that is no one's is refused as before.
        #expect(try await raw.request(.GET, "/v1/mailbox", token: String(repeating: "0", count: 64)).status == 401)
    }

    @Test("requests by a known token still count against the account's rate limit")
    func knownTokenIsRateLimited() async throws {
        let directory = try TemporaryDirectory("mailbox-token")
        // One request a second, a burst of two.
        let relay = try await RelayProcess.start(in: directory, arguments: ["--rate-limit-account", "1"])
        defer { relay.kill(SIGKILL) }
        let raw = RawHTTP(relay)
        let bob = try await RawDevice.register("bob", on: relay)
        // Ten at once: more than the burst, whatever the machine's load does to their timing.
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<10 { group.addTask { Int(try await raw.request(.GET, "/v1/mailbox", token: bob.token).status) } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.contains(200))
        #expect(statuses.contains(429), "\(statuses)")
    }
}

/// The storage side, against SQLite and PostgreSQL alike.
@Suite("Relay storage conformance: the mailbox by token (SQLite and PostgreSQL)")
struct MailboxByTokenConformanceTests {
    static let alice = "alice@relay.test"
    let one = DeviceAddress(address: alice, deviceId: 1)
    let two = DeviceAddress(address: alice, deviceId: 2)

    private func key(_ id: UInt32) -> StoredSignedKey { StoredSignedKey(id: id, key: [UInt8(id)], signature: [UInt8(id), 0]) }

    @Test("an unknown or expired token reads and deletes nothing; a token deletes only its own device's ids and pages as fetch does",
          arguments: StorageKind.allCases)
    func mailboxByToken(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            try await storage.storeToken(hash: [1], device: one, expiresAt: 100)
            try await storage.storeToken(hash: [2], device: two, expiresAt: 100)
            #expect(try await storage.storePreKeys(for: two, signed: key(1), lastResort: key(2), oneTime: [key(5)], oneTimePQ: [key(6), key(7)], limit: 10))
            for body: UInt8 in [1, 3] {
                #expect(try await storage.enqueue([(1, [body]), (2, [body + 1])], for: Self.alice, ifDeviceList: [10], now: 1, expiresAt: 1000,
                                                  mailboxLimit: 10) == .stored)
            }
            let ones = try await storage.fetch(for: one, now: 2, limit: 10, after: 0).messages
            let twos = try await storage.fetch(for: two, now: 2, limit: 10, after: 0).messages
            #expect(ones.map(\.envelope) == [[1], [3]] && twos.map(\.envelope) == [[2], [4]])

            #expect(try await storage.acknowledge(ones.map(\.id), forTokenHash: [9], thenFetch: 10, after: 0, now: 2, groups: false) == nil)
            #expect(try await storage.acknowledge(ones.map(\.id), forTokenHash: [1], thenFetch: 10, after: 0, now: 100, groups: false) == nil)
            #expect(try await storage.fetch(for: one, now: 2, limit: 10, after: 0).messages == ones)

            let read = try await storage.acknowledge([ones[0].id, twos[0].id], forTokenHash: [1], thenFetch: 10, after: 0, now: 2, groups: false)
            #expect(read?.device == one)
            #expect(read?.page.messages == [ones[1]])
            #expect(read?.page.acknowledged == 1)
            #expect(read?.page.more == false)
            #expect(try await storage.fetch(for: two, now: 2, limit: 10, after: 0).messages == twos, "device two's id was not device one's to acknowledge")

            let first = try await storage.acknowledge([], forTokenHash: [2], thenFetch: 1, after: 0, now: 2, groups: false)
            #expect(first?.device == two)
            #expect(first?.page.messages == [twos[0]])
            #expect(first?.page.more == true)
            #expect(first?.page.acknowledged == 0)
            #expect(first?.page.oneTimePreKeys == 1 && first?.page.oneTimePQPreKeys == 2)
            let next = try await storage.acknowledge([], forTokenHash: [2], thenFetch: 1, after: twos[0].id, now: 2, groups: false)
            #expect(next?.page.messages == [twos[1]])
            #expect(next?.page.more == false)
        }
    }
}
