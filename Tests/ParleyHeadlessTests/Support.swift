import Foundation
import ParleyHeadless
#if canImport(Glibc)
import Glibc
#endif

/// A connected pair: the daemon side as a LineConnection, the client side as raw file descriptors.
final class SocketPair: @unchecked Sendable {
    let server: LineConnection
    let client: Int32
    private var buffer = [UInt8]()

    init() throws {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw TestError("socketpair failed") }
        server = LineConnection(readFD: fds[0], writeFD: fds[0], closeOnFinish: true)
        client = fds[1]
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(client, $0.baseAddress, $0.count) }
    }

    /// The next line the daemon side wrote (nil at end of stream, or after 30 s without one). Polls
    /// without blocking, so waiting never takes a thread the code under test needs.
    func readLine() async -> String? {
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                buffer += chunk[..<n]
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    func readJSON() async throws -> JSONValue {
        guard let line = await readLine() else { throw TestError("no line from the daemon side") }
        guard let value = JSONValue.parse(line) else { throw TestError("not JSON: \(line)") }
        return value
    }

    func closeClient() { Glibc.close(client) }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

