import Foundation
import GRDB
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// The relay's SQLite readers under a burst of requests when Swift's cooperative thread pool is one thread
/// wide (the relay pinned to one CPU; on the 2-core hosts it runs on, the pool is two threads wide).
@Suite("Relay reader pool")
struct RelayReaderPoolTests {
    /// Before the fix the relay answered none of these and stayed wedged: token lookups and mailbox pages
    /// took a reader synchronously, blocking the only cooperative thread, while the prekey counts' async
    /// reads held every reader until that thread could resume them.
    @Test("a burst of token lookups, mailbox pages and prekey counts is answered in full by a relay with one cooperative thread")
    func burstOnOneCooperativeThread() async throws {
        let directory = try TemporaryDirectory()
        let relay = try await RelayProcess.start(in: directory, arguments: ["--no-rate-limit"], cpus: "0")
        defer { relay.kill() }
        let device = try await RawDevice.register("reader", on: relay)
        let paths = ["/v1/keys/count", "/v1/mailbox?limit=10"]
        for round in 1...4 {
            let answers = try await onThreadOfItsOwn {
                let sockets = try (0..<64).map { _ in try LoopbackSocket(port: relay.port) }
                for (index, socket) in sockets.enumerated() {
                    try socket.send("GET \(paths[index % 2]) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(device.token)\r\n\r\n")
                }
                // The hang guard: a wedged relay answers nothing, and the first silent minute fails the test.
                return try sockets.map { try $0.readSome(timeoutSeconds: 60) }
            }
            for (index, answer) in answers.enumerated() {
                #expect(answer.hasPrefix("HTTP/1.1 200"), "round \(round), \(paths[index % 2]): \(answer.prefix(60))")
            }
        }
    }

    /// Sends read the recipient's account and verifier on the hot-read connection and wait for the group
    /// commit on the writer's queue, mailbox pages read on the hot-read connection, prekey counts on the
    /// pool: all three at once, with one cooperative thread, must all be answered.
    @Test("a burst of sends, mailbox pages and prekey counts is answered in full by a relay with one cooperative thread")
    func sendsAndReadsOnOneCooperativeThread() async throws {
        let directory = try TemporaryDirectory()
        let relay = try await RelayProcess.start(in: directory, arguments: ["--no-rate-limit"], cpus: "0")
        defer { relay.kill() }
        let device = try await RawDevice.register("reader", on: relay)
        let message = OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(device.key.publicKey.bytes), envelope: Base64Bytes([UInt8](repeating: 0x5A, count: 600)))
        let body = String(decoding: try JSONEncoder().encode(SendRequest(messages: [message])), as: UTF8.self)
        let send = "POST \(RawHTTP(relay).messagesPath(device.address)) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        let requests = [
            (send, "HTTP/1.1 204"),
            ("GET /v1/mailbox?limit=10 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(device.token)\r\n\r\n", "HTTP/1.1 200"),
            ("GET /v1/keys/count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(device.token)\r\n\r\n", "HTTP/1.1 200"),
        ]
        for round in 1...4 {
            let answers = try await onThreadOfItsOwn {
                let sockets = try (0..<66).map { _ in try LoopbackSocket(port: relay.port) }
                for (index, socket) in sockets.enumerated() { try socket.send(requests[index % 3].0) }
                return try sockets.map { try $0.readSome(timeoutSeconds: 60) }
            }
            for (index, answer) in answers.enumerated() {
                #expect(answer.hasPrefix(requests[index % 3].1), "round \(round), request \(index % 3): \(answer.prefix(60))")
            }
        }
    }

    /// The reads on every request's path have a connection of their own: with every reader of the pool
    /// taken (as async reads keep them while they wait for a cooperative thread), a token lookup, a send's
    /// account reads and a mailbox page are still answered. Through the pool they waited for a reader.
    @Test("token lookups, account reads and mailbox pages are answered while every reader of the pool is taken")
    func hotReadsWhileThePoolIsTaken() async throws {
        let directory = try TemporaryDirectory()
        let storage = try SQLiteRelayStorage(path: directory.sub("relay.db"))
        let pool = try #require(storage.database as? DatabasePool)
        let device = DeviceAddress(address: "reader@relay.test", deviceId: 1)
        let hash = [UInt8](repeating: 7, count: 32)
        try await storage.storeToken(hash: hash, device: device, expiresAt: 2_000)
        #expect(try await storage.createAccount(address: device.address, accountKey: [1], deviceList: [2]))

        let readers = pool.configuration.maximumReaderCount
        let taken = DispatchSemaphore(value: 0)
        let held = HeldReaders()
        for _ in 0..<readers {
            pool.asyncRead { _ in
                taken.signal()
                held.wait()
            }
        }
        try await onThreadOfItsOwn { for _ in 0..<readers { taken.wait() } }

        let reads = Task {
            (try await storage.device(forTokenHash: hash, now: 1_000), try await storage.account(device.address),
             try await storage.deliveryAccessVerifier(of: device.address), try await storage.fetch(for: device, now: 1_000, limit: 10, after: 0, groups: false))
        }
        let answeredInTime = await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = try? await reads.value; return true }
            group.addTask { try? await Task.sleep(for: .seconds(20)); return false }
            let first = await group.next() ?? false
            held.release(readers)   // so that reads stuck behind the pool can finish, and the group with them
            group.cancelAll()
            return first
        }
        #expect(answeredInTime, "the hot reads waited for a reader of the pool")
        let (found, account, verifier, page) = try await reads.value
        #expect(found == device)
        #expect(account?.accountKey == [1] && account?.deviceList == [2])
        #expect(verifier == nil)
        #expect(page.messages.isEmpty && !page.more)
    }

    /// The inline readers are tried, never waited for: with every one of them in use, a read goes to the
    /// overflow connection's queue and is answered.
    @Test("with every inline reader in use, a hot read is answered on the overflow connection")
    func overflowWhenEveryInlineReaderIsInUse() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.sub("relay.db")
        _ = try SQLiteRelayStorage(path: path)   // creates and migrates the file
        let reads = try SQLiteHotReads(path: path)
        #expect(!reads.inline.isEmpty)
        let taken = DispatchSemaphore(value: 0)
        let held = HeldReaders()
        for reader in reads.inline {
            Thread.detachNewThread {
                _ = reader.tryRead { _ in
                    taken.signal()
                    held.wait()
                }
            }
        }
        try await onThreadOfItsOwn { for _ in reads.inline { taken.wait() } }
        #expect(reads.inline.allSatisfy { $0.tryRead { _ in 1 } == nil })

        let read = Task { try await reads.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM tokens") } }
        let answeredInTime = await withTaskGroup(of: Bool.self) { group in
            group.addTask { _ = try? await read.value; return true }
            group.addTask { try? await Task.sleep(for: .seconds(20)); return false }
            let first = await group.next() ?? false
            held.release(reads.inline.count)
            group.cancelAll()
            return first
        }
        #expect(answeredInTime, "the read waited for an inline reader")
        #expect(try await read.value == 0)
    }
}

/// Readers kept busy until released.
private final class HeldReaders: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func wait() { semaphore.wait() }
    func release(_ count: Int) { for _ in 0..<count { semaphore.signal() } }
}

/// Runs blocking socket work on a thread of its own, so that it never holds one of this test process's
/// cooperative threads (other tests' in-process servers need them).
private func onThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
