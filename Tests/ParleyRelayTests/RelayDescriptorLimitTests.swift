import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A relay at its open-file limit refuses new connections instead of dying. Before the overall cap,
/// connections past the limit were never answered (the kernel queued them, the relay could not accept
/// them), and the relay could abort with SIGILL when libdispatch found no descriptor for /proc/<tid>/stat.
@Suite("Relay open-file limit")
struct RelayDescriptorLimitTests {
    @Test("under a low open-file limit, push connections past the cap are closed at once; the relay stays up and serves again when some close")
    func pushConnectionsPastTheLimit() async throws {
        let directory = try TemporaryDirectory()
        let relay = try await RelayProcess.start(in: directory, arguments: ["--rate-limit-ip", "100000"], openFileLimit: 128)
        defer { relay.kill() }
        let cap = try #require(Self.announcedCap(in: relay.errorLog), "the relay says its connection cap: \(relay.errorLog)")
        #expect(cap == 128 - 64, "the default leaves a quarter of the limit, at least 64 descriptors, in reserve")

        let devices = try await (0..<(cap + 16)).asyncMap { try await RawDevice.register("d\($0)", on: relay) }
        var held: [LoopbackSocket] = []
        var refused: [Int] = []
        for (index, device) in devices.enumerated() {
            // Before the cap this read timed out: the relay could not accept the connection at all.
            let (socket, outcome) = try RawPush.open(token: device.token, relay: relay)
            switch outcome {
            case .upgraded: held.append(socket)
            case .closed: refused.append(index)
            case .other(let answer): Issue.record("push \(index) answered \(answer)")
            }
        }
        #expect(held.count <= cap && held.count >= cap - 16, "\(held.count) held: about the cap (the test's own HTTP client holds a few)")
        #expect(refused.count >= 16, "\(refused.count) refused")
        #expect(relay.isRunning)

        // Refusing is told in one line, not one per connection.
        let lines = relay.errorLog.components(separatedBy: "\n").filter { $0.contains("refusing new connections") }
        #expect(lines.count == 1, "\(lines)")

        // The held connections are still open.
        for socket in held.prefix(3) { #expect(!(try socket.waitForClose(timeoutSeconds: 0))) }

        // Some close: the relay serves again, a refused device's push connection included.
        for socket in held.suffix(8) { socket.close() }
        held.removeLast(8)
        let retried = devices[refused[0]]
        try await eventually("a refused device to connect once others closed", timeout: .seconds(30)) {
            let (socket, outcome) = try RawPush.open(token: retried.token, relay: relay)
            if outcome == .upgraded { held.append(socket) }
            return outcome == .upgraded
        }
        let reply = try await retried.send([1, 2, 3], on: relay)
        #expect(reply.status == 204, "\(reply.text)")
        #expect(try held.last!.readSome(timeoutSeconds: 30).contains("wake"), "the device hears of its mail on its new push connection")
        #expect(relay.isRunning)
        #expect(try await relay.stop(signal: SIGTERM) == 0, "and it still shuts down cleanly: \(relay.errorLog)")
    }

    /// The cap from the relay's start line "open-file limit N; at most M connections".
    static func announcedCap(in log: String) -> Int? {
        guard let range = log.range(of: "at most ") else { return nil }
        return Int(log[range.upperBound...].prefix { $0.isNumber })
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
