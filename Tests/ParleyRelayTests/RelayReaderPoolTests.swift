import Foundation
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
}

/// Runs blocking socket work on a thread of its own, so that it never holds one of this test process's
/// cooperative threads (other tests' in-process servers need them).
private func onThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
