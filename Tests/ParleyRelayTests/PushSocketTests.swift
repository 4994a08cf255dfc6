import Foundation
import ParleyCrypto
import Testing
@testable import ParleyClient
#if canImport(Glibc)
import Glibc
#endif

/// The push socket against a peer that accepts connections and never answers.
@Suite("Push socket")
struct PushSocketTests {
    @Test("a relay that never answers the upgrade: cancelling the listener ends it at once, not after the upgrade timeout")
    func cancelDuringUpgrade() async throws {
        let silent = try SilentListener()
        defer { silent.close() }
        let ended = OnceFlag()
        let task = Task {
            // An upgrade timeout far beyond the test's deadline: only cancellation can end the call.
            try? await PushSocket.run(url: "ws://127.0.0.1:\(silent.port)/v1/push", authorization: "Bearer x", tls: nil,
                                      timeout: .seconds(3_600)) { _ in }
            _ = ended.setIfUnset()
        }
        // Both waits end on the event itself (the kernel holding the connection, the call returning); the
        // bounds only stop a hung run, and are generous because a loaded machine can stall the connect.
        try await eventually("the connection to be accepted", timeout: .seconds(600)) { silent.hasPendingConnection }
        #expect(!ended.isSet)
        task.cancel()
        try await eventually("the cancelled push socket to return", timeout: .seconds(600)) { ended.isSet }
    }
}

/// A TCP socket on 127.0.0.1 that listens but never accepts: the kernel completes connections into its
/// backlog, and nothing is ever answered.
final class SilentListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        (fd, port) = try listeningLoopbackSocket(backlog: 8)
    }

    /// Whether a completed connection waits in the backlog: the listening socket is readable exactly then
    /// (asked of the kernel with a zero-timeout poll, so a busy machine cannot make the answer wrong).
    var hasPendingConnection: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
    }

    func close() { _ = Glibc.close(fd) }
}

/// A TCP socket listening on 127.0.0.1 at a port the kernel chose.
func listeningLoopbackSocket(backlog: Int32) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0, listen(fd, backlog) == 0 else {
        let reason = String(cString: strerror(errno))
        _ = Glibc.close(fd)
        throw FixtureError("cannot listen: \(reason)")
    }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
