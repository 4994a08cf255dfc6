import Foundation
import ParleyClient
import ParleyProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's transports side by side, in one run against one daemon:
///
///   headless_transport  `parley daemon --http 127.0.0.1:PORT --socket PATH` for one account; `requests`
///                       JSON-RPC `send` calls to a contact, one at a time, over HTTP (POST /api/v1/rpc on
///                       one keep-alive connection) and over the Unix socket, alternating in blocks of 25 so
///                       that a change of load falls on both; requests/s and p50/p99 of each (request
///                       written to response read). Then another account (an in-process engine) sends
///                       `sseMessages` messages to the daemon's account, one at a time, and a client on
///                       GET /api/v1/events notes each event's arrival: the delay from the relay's accept
///                       answer to the sender (send() returning) to the event at the client, p50/p99, and
///                       from the start of send() for comparison (the push can overtake the answer, so
///                       the first delay can be negative).
struct HeadlessTransportBenchmarks {
    var requests = 400
    var sseMessages = 200
    static let block = 25

    func run(parley: String) async {
        var line = JSONLine(name: "headless_transport")
        do {
            let world = try await HeadlessWorld.start(parley: parley)
            defer { world.stop() }
            let bot = world.home("bot"), botAddress = "bot@\(world.relayName)"
            try world.cli(["init", botAddress] + bot)
            let alice = try await world.engine("alice")
            let aliceAddress = "alice@\(world.relayName)"
            try await alice.addContact(try AccountAddress(botAddress))
            try world.cli(["add-contact", aliceAddress] + bot)
            let port = try headlessFreePort()
            let socket = world.directory + "/bot.sock"
            let daemon = try world.spawn(["daemon", "--http", "127.0.0.1:\(port)", "--socket", socket] + bot)
            defer { kill(daemon, SIGTERM); var status: Int32 = 0; waitpid(daemon, &status, 0) }
            let http = try BlockingStream.tcp(port: port)
            let unix = try BlockingStream.unix(path: socket)

            func body(_ i: Int, _ via: String) -> String {
                #"{"jsonrpc":"2.0","id":\#(i),"method":"send","params":{"recipient":"\#(aliceAddress)","message":"bench \#(via) \#(i)"}}"#
            }
            // One of each first: the session with alice is set up outside the measurement.
            _ = try http.post(body(0, "http"))
            _ = try unix.call(body(0, "socket"))
            var httpSamples: [Double] = [], socketSamples: [Double] = []
            var httpNs: UInt64 = 0, socketNs: UInt64 = 0
            var sent = 0
            while sent < requests {
                let count = min(Self.block, requests - sent)
                for i in sent..<(sent + count) {
                    let start = Measure.now()
                    let answer = try http.post(body(i + 1, "http"))
                    let elapsed = Measure.now() - start
                    guard answer.contains(#""result""#) else { throw BenchError("send over HTTP failed: \(answer.prefix(200))") }
                    httpNs += elapsed
                    httpSamples.append(Double(elapsed) / 1e6)
                }
                for i in sent..<(sent + count) {
                    let start = Measure.now()
                    let answer = try unix.call(body(i + 1, "socket"))
                    let elapsed = Measure.now() - start
                    guard answer.contains(#""result""#) else { throw BenchError("send over the socket failed: \(answer.prefix(200))") }
                    socketNs += elapsed
                    socketSamples.append(Double(elapsed) / 1e6)
                }
                sent += count
            }
            httpSamples.sort()
            socketSamples.sort()
            line.add("requests", .int(requests))
            line.add("http_send_per_s", .number(Double(requests) / (Double(httpNs) / 1e9)))
            line.add("http_send_p50_ms", .number(RelayBenchmarks.percentile(httpSamples, 0.5)))
            line.add("http_send_p99_ms", .number(RelayBenchmarks.percentile(httpSamples, 0.99)))
            line.add("socket_send_per_s", .number(Double(requests) / (Double(socketNs) / 1e9)))
            line.add("socket_send_p50_ms", .number(RelayBenchmarks.percentile(socketSamples, 0.5)))
            line.add("socket_send_p99_ms", .number(RelayBenchmarks.percentile(socketSamples, 0.99)))

            let events = try EventStreamClock(port: port)
            // A first message proves the stream is live before anything is timed.
            _ = try await alice.send(text: "sse-bench warm-up;", to: try AccountAddress(botAddress))
            try await events.wait(for: "sse-bench warm-up;")
            var fromAccept: [Double] = [], fromStart: [Double] = []
            for i in 0..<sseMessages {
                let marker = "sse-bench \(i);"
                let start = Measure.now()
                _ = try await alice.send(text: marker, to: try AccountAddress(botAddress))
                let accepted = Measure.now()
                let arrived = try await events.wait(for: marker)
                fromAccept.append((Double(arrived) - Double(accepted)) / 1e6)
                fromStart.append(Double(arrived - start) / 1e6)
            }
            fromAccept.sort()
            fromStart.sort()
            line.add("sse_messages", .int(sseMessages))
            line.add("sse_from_accept_p50_ms", .number(RelayBenchmarks.percentile(fromAccept, 0.5)))
            line.add("sse_from_accept_p99_ms", .number(RelayBenchmarks.percentile(fromAccept, 0.99)))
            line.add("sse_from_send_start_p50_ms", .number(RelayBenchmarks.percentile(fromStart, 0.5)))
            line.add("sse_from_send_start_p99_ms", .number(RelayBenchmarks.percentile(fromStart, 0.99)))
            line.add("binary", .string(parley))
        } catch {
            line.add("error", .string("\(error)"))
        }
        var load = [Double](repeating: 0, count: 3)
        if getloadavg(&load, 3) > 0 { line.add("loadavg_1m", .number(load[0])) }
        print(line.text)
    }
}

/// A blocking client connection: HTTP/1.1 keep-alive requests, or JSON-RPC lines on the Unix socket.
final class BlockingStream {
    let fd: Int32
    private var pending = [UInt8]()

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Connects, retrying for up to 30 s while the daemon starts.
    static func connecting(_ attempt: () -> Int32?) throws -> BlockingStream {
        let deadline = Measure.now() + 30_000_000_000
        while true {
            if let fd = attempt() { return BlockingStream(fd: fd) }
            guard Measure.now() < deadline else { throw BenchError("the daemon did not accept a connection") }
            usleep(20_000)
        }
    }

    static func tcp(port: Int) throws -> BlockingStream {
        try connecting {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok == 0 {
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return fd
            }
            close(fd)
            return nil
        }
    }

    static func unix(path: String) throws -> BlockingStream {
        try connecting { connectedUnixSocket(path) }
    }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw BenchError("write: \(String(cString: strerror(errno)))") }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Reads more bytes into `pending`; throws at the end of the stream.
    func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw BenchError("the daemon closed the connection") }
        pending += chunk[..<n]
    }

    /// One line of the Unix socket: the JSON-RPC response (notifications are not subscribed here).
    func call(_ line: String) throws -> String {
        try send(line + "\n")
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let text = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return text
            }
            try fill()
        }
    }

    /// POST /api/v1/rpc on the kept-alive connection; the response body (the daemon sends Content-Length).
    func post(_ json: String) throws -> String {
        try send("POST /api/v1/rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n" + json)
        let separator = Array("\r\n\r\n".utf8)
        while pending.firstRange(of: separator) == nil { try fill() }
        let headEnd = pending.firstRange(of: separator)!.upperBound
        let head = String(decoding: pending[..<headEnd], as: UTF8.self).lowercased()
        guard let field = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(field.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else {
            throw BenchError("a response without Content-Length: \(head.prefix(200))")
        }
        while pending.count < headEnd + length { try fill() }
        let text = String(decoding: pending[headEnd..<(headEnd + length)], as: UTF8.self)
        pending.removeSubrange(..<(headEnd + length))
        return text
    }
}

/// A GET /api/v1/events client on its own thread: the time each marker text first appears in the stream.
final class EventStreamClock: @unchecked Sendable {
    private let stream: BlockingStream
    private let lock = NSLock()
    private var seen: [String: UInt64] = [:]
    private var text = ""

    init(port: Int) throws {
        stream = try BlockingStream.tcp(port: port)
        try stream.send("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        Thread { [self] in readLoop() }.start()
    }

    /// When `marker` arrived (bounded: 60 s).
    func wait(for marker: String) async throws -> UInt64 {
        let deadline = Measure.now() + 60_000_000_000
        while true {
            if let at = lock.withLock({ seen[marker] }) { return at }
            guard Measure.now() < deadline else { throw BenchError("no event with \(marker) on the stream") }
            try await Task.sleep(for: .microseconds(200))
        }
    }

    private func readLoop() {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var carry = ""
        while true {
            let n = chunk.withUnsafeMutableBytes { read(stream.fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            let at = Measure.now()
            carry += String(decoding: chunk[..<n], as: UTF8.self)
            // Each event is one "data:" line; markers are "sse-bench ...;" inside the message text.
            var rest = carry[...]
            while let start = rest.range(of: "sse-bench "), let end = rest[start.upperBound...].firstIndex(of: ";") {
                let marker = String(rest[start.lowerBound...end])
                lock.withLock { if seen[marker] == nil { seen[marker] = at } }
                rest = rest[rest.index(after: end)...]
            }
            carry = String(rest.suffix(64))
        }
    }
}
