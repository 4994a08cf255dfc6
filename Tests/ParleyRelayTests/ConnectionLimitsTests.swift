import Foundation
import Testing
import ParleyTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// What a client that opens connections and sends nothing (or little) can hold on the relay: before
/// these limits, one such connection kept the relay running after SIGTERM and thousands held as many
/// descriptors for as long as the client liked.
@Suite("Relay connection limits")
struct ConnectionLimitsTests {
    @Test("a connection that sends nothing, or half a request head, is closed after --header-timeout; one that sent a request stays")
    func headerTimeout() async throws {
        try await withRelay(["--header-timeout", "1"]) { relay, _ in
            let silent = try LoopbackSocket(port: relay.port)
            let half = try LoopbackSocket(port: relay.port)
            try half.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            // Line ends before a request line are skipped by the parser: they do not count as a head.
            let lineEnds = try LoopbackSocket(port: relay.port)
            try lineEnds.send("\r\n\r\n")
            let served = try LoopbackSocket(port: relay.port)
            try served.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try served.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 200"))

            #expect(try silent.waitForClose(timeoutSeconds: 30), "closed by the relay")
            #expect(try half.waitForClose(timeoutSeconds: 30), "closed by the relay")
            #expect(try lineEnds.waitForClose(timeoutSeconds: 30), "closed by the relay")
            // Both were closed after a second at least; the one that completed a request is still open.
            #expect(!(try served.waitForClose(timeoutSeconds: 0)))
            try served.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try served.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("a request head the parser refuses is answered 400 and its connection closed, not held open")
    func malformedHeads() async throws {
        // Before, each of these was never answered and its connection stayed open past both timeouts.
        try await withRelay(["--header-timeout", "600", "--idle-timeout", "600"]) { relay, _ in
            let heads = [
                "GET /v1/health HTTP/9.9\r\nHost: x\r\n\r\n",
                "GET /v1/health\r\n\r\n",
                "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
                "GET /v1/he alth HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "a", count: 200_000) + "\r\n\r\n",
                "\u{16}\u{03}\u{01}zzzz\r\n\r\n",
            ]
            for head in heads {
                let socket = try LoopbackSocket(port: relay.port)
                try socket.send(head)
                #expect(try socket.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 400"), "\(head.prefix(40))")
                #expect(try socket.waitForClose(timeoutSeconds: 30), "closed after the 400: \(head.prefix(40))")
            }
            // A valid request written together with a refused one is answered first, then the 400.
            let pipelined = try LoopbackSocket(port: relay.port)
            try pipelined.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/9.9\r\n\r\n")
            var answers = ""
            while let part = try? pipelined.readSome(timeoutSeconds: 30), !part.isEmpty { answers += part }
            // (The 400's status line follows the health answer's JSON body directly.)
            let statuses = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(statuses == ["200", "400"], "\(answers)")

            // The relay still serves.
            let served = try LoopbackSocket(port: relay.port)
            try served.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(try served.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 200"))
        }
    }

    @Test("SIGTERM stops the relay though a connection has sent nothing and another never finishes its request")
    func shutdownWithSilentConnection() async throws {
        try await withRelay { relay, _ in
            let silent = try LoopbackSocket(port: relay.port)
            // And one whose request never finishes: its head is complete, its body never comes.
            let stuck = try LoopbackSocket(port: relay.port)
            try stuck.send("POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a")
            #expect(try await relay.stop(signal: SIGTERM) == 0)
            #expect(try silent.waitForClose(timeoutSeconds: 30))
            #expect(try stuck.waitForClose(timeoutSeconds: 30))
        }
    }

    @Test("a client still writing a body the relay refused with 'Connection: close' is cut off, not left blocked")
    func refusedBodyWithConnectionClose() async throws {
        try await withRelay { relay, _ in
            let client = try LoopbackSocket(port: relay.port)
            let size = 40 << 20
            try client.send("POST /v1/accounts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(size)\r\n\r\n")
            // Before the fix the relay half-closed after its 413 and stopped reading: this loop then blocked
            // (no room to write for 30 s). Now the relay drains the rest for a moment, then closes.
            let outcome = try client.writeAll(bytes: size, stallSeconds: 30)
            #expect(outcome != .stalled, "the writer is never left blocked")
            if outcome == .written { #expect(try client.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 413")) }
            #expect(try client.waitForClose(timeoutSeconds: 30), "and the relay closes the connection")
        }
    }

    @Test("connections from one address over --max-connections-per-ip are closed without an answer; closing one makes room")
    func perAddressCap() async throws {
        try await withRelay(["--max-connections-per-ip", "3"]) { relay, _ in
            // Four at once: which one the relay counts last depends on its event loops, so the test asks
            // only that exactly one is closed, and that the three others are served.
            let sockets = try (0..<4).map { _ in try LoopbackSocket(port: relay.port) }
            var closed: [Int] = []
            try await eventually("one of four connections to be closed", timeout: .seconds(30)) {
                closed = try sockets.indices.filter { try sockets[$0].waitForClose(timeoutSeconds: 0) }
                return !closed.isEmpty
            }
            #expect(closed.count == 1, "over the cap: one closed without an answer")
            let held = sockets.indices.filter { !closed.contains($0) }.map { sockets[$0] }
            for socket in held {
                try socket.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                #expect(try socket.readSome(timeoutSeconds: 30).hasPrefix("HTTP/1.1 200"), "under the cap: served")
            }

            held[1].close()
            try await eventually("a new connection to be served after one closed", timeout: .seconds(30)) {
                let next = try LoopbackSocket(port: relay.port)
                try? next.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                return (try? next.readSome(timeoutSeconds: 5))?.hasPrefix("HTTP/1.1 200") ?? false
            }
        }
    }
}

/// parley-relay's own exit statuses and messages, as parley-relay(8) documents them: one line each.
@Suite("parley-relay command line")
struct RelayCommandLineTests {
    @Test("usage errors exit 1, start-up failures 3, each with one line on stderr and no data directory left behind")
    func exitStatuses() async throws {
        let directory = try TemporaryDirectory()
        let relay = try Binaries.path("parley-relay")
        FileManager.default.createFile(atPath: directory.sub("a-file"), contents: Data("x".utf8))
        let taken = try SilentListener()   // holds a loopback port
        defer { taken.close() }
        let cases: [(arguments: [String], status: Int32, says: String)] = [
            (["serve", "--data", directory.sub("d"), "--listen", "nowhere"], 1, "--listen must be HOST:PORT"),
            (["serve", "--listen", "127.0.0.1:1"], 1, "--data"),
            (["serve", "--data", directory.sub("d"), "--name", "bad name"], 1, "cannot be a relay's name"),
            (["serve", "--data", directory.sub("d"), "--listen", "127.0.0.1:1", "--log-level", "loud"], 1, "unknown --log-level"),
            (["serve", "--data", directory.sub("a-file"), "--listen", "127.0.0.1:1"], 3, "cannot use the data directory"),
            (["serve", "--data", directory.sub("d"), "--listen", "127.0.0.1:1", "--tls-cert", directory.sub("a-file"),
              "--tls-key", directory.sub("a-file")], 3, "not a readable PEM certificate"),
            (["serve", "--data", directory.sub("d"), "--listen", "127.0.0.1:\(taken.port)"], 3, "cannot listen on 127.0.0.1:\(taken.port)"),
            (["serve", "--data", directory.sub("new/deeper/d"), "--listen", "127.0.0.1:\(taken.port)"], 3, "cannot listen on"),
            (["serve", "--data", directory.sub("kept"), "--listen", "127.0.0.1:\(taken.port)"], 3, "cannot listen on"),
        ]
        // A data directory that was there before a failed start stays as it was.
        try FileManager.default.createDirectory(atPath: directory.sub("kept"), withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: directory.sub("kept/mine"), contents: Data("x".utf8))
        for (arguments, status, says) in cases {
            let result = try await run(relay, arguments, in: directory, timeout: .seconds(60))
            #expect(result.status == status, "\(arguments): \(result.summary)")
            let lines = result.stderr.split(separator: "\n").filter { !$0.contains(" info parley-relay") }
            #expect(lines.count == 1 && lines[0].hasPrefix("parley-relay: ") && lines[0].contains(says), "\(arguments): \(result.summary)")
            // A start that failed changed nothing: the directories it created are gone again.
            #expect(!FileManager.default.fileExists(atPath: directory.sub("d")), "\(arguments) left its data directory")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("new")), "\(arguments) left its data directory's parents")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.sub("kept")) == ["mine"],
                "a data directory that was there stays as it was: no database was created in it")
    }
}

/// A plain blocking TCP socket to 127.0.0.1, for talking to the relay below any HTTP client.
final class LoopbackSocket {
    private var fd: Int32

    init(port: Int) throws {
        fd = try ConnectedSocket.tcp(port: port)
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    func send(_ text: String) throws {
        let sent = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        guard sent >= 0 else { throw FixtureError("send: \(errno)") }
    }

    enum WriteOutcome { case written, refused, stalled }

    /// Writes `bytes` spaces: all of them, or until the peer refuses them (broken pipe or reset), or until
    /// no room to write appeared for `stallSeconds`.
    func writeAll(bytes: Int, stallSeconds: Int) throws -> WriteOutcome {
        let chunk = [UInt8](repeating: 0x20, count: 64 * 1024)
        var written = 0
        while written < bytes {
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, Int32(stallSeconds * 1000)) > 0 else { return .stalled }
            let sent = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min(chunk.count, bytes - written), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if sent < 0 {
                if errno == EPIPE || errno == ECONNRESET { return .refused }
                if errno == EAGAIN || errno == EWOULDBLOCK { continue }
                throw FixtureError("send: \(errno)")
            }
            written += sent
        }
        return .written
    }

    /// Whatever arrives first (empty when the relay closed the connection).
    func readSome(timeoutSeconds: Int) throws -> String {
        guard let bytes = try receive(timeoutSeconds: timeoutSeconds) else { throw FixtureError("nothing arrived in \(timeoutSeconds) s") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// True when the relay closes the connection within the time (bytes arriving before it are skipped).
    func waitForClose(timeoutSeconds: Int) throws -> Bool {
        while let bytes = try receive(timeoutSeconds: timeoutSeconds) {
            if bytes.isEmpty { return true }
        }
        return false
    }

    /// Bytes read (empty at end of stream or reset), or nil when nothing came within the time.
    func receive(timeoutSeconds: Int) throws -> [UInt8]? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeoutSeconds * 1000)) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        if count < 0 { return errno == ECONNRESET ? [] : nil }
        return Array(buffer.prefix(count))
    }
}
