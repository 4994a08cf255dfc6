import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A plain HTTP/1.1 client on a raw TCP socket: what it sends is exactly what a test writes (slow,
/// malformed, oversized), and it reads without blocking a thread the daemon under test needs.
final class RawHTTP: @unchecked Sendable {
    let fd: Int32
    private var buffer = [UInt8]()

    init(port: Int, host: String = "127.0.0.1") throws {
        fd = try ConnectedSocket.tcp(host: host, port: port)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    deinit { Glibc.close(fd) }

    /// Writes everything; false once the daemon closed the connection.
    @discardableResult
    func send(_ text: String) async -> Bool { await send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) async -> Bool {
        var offset = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return true
    }

    /// Reads more bytes into the buffer; false at end of stream (or after `timeout` without any).
    private func fill(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer += chunk[..<n]
                return true
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Whether the daemon has closed the connection (reads until end of stream; bounded by `timeout`).
    func closedByPeer(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while ContinuousClock.now < deadline {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            if n < 0, errno != EAGAIN, errno != EWOULDBLOCK, errno != EINTR { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    private func line() async throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var bytes = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if bytes.last == 0x0D { bytes.removeLast() }
                return String(decoding: bytes, as: UTF8.self)
            }
            guard await fill() else { throw TestError("the connection ended inside a line") }
        }
    }

    struct Response {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: JSONValue? { JSONValue.parse(body) }
    }

    /// The status line and headers of the next response.
    func head() async throws -> (Int, [String: String]) {
        let status = try await line()
        let parts = status.split(separator: " ")
        guard parts.count >= 2, let code = Int(parts[1]) else { throw TestError("not a status line: \(status)") }
        var headers: [String: String] = [:]
        while true {
            let header = try await line()
            if header.isEmpty { break }
            if let colon = header.firstIndex(of: ":") {
                headers[header[..<colon].lowercased()] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (code, headers)
    }

    /// The next whole response (Content-Length bodies, as the daemon writes them outside event streams).
    func response() async throws -> Response {
        let (status, headers) = try await head()
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while buffer.count < length {
            guard await fill() else { throw TestError("the connection ended inside a body") }
        }
        let body = String(decoding: buffer[..<length], as: UTF8.self)
        buffer.removeSubrange(..<length)
        return Response(status: status, headers: headers, body: body)
    }

    /// One request, its response.
    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> Response {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        var all = headers
        if let body { all["Content-Length"] = String(body.utf8.count) }
        if body != nil, all["Content-Type"] == nil { all["Content-Type"] = "application/json" }
        for (name, value) in all.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        text += "\r\n" + (body ?? "")
        guard await send(text) else { throw TestError("the daemon closed the connection") }
        return try await response()
    }

    // MARK: Server-Sent Events (the body of an event stream is chunked)

    struct Event {
        var id: String?
        var event: String?
        var data: String = ""
        var json: JSONValue? { JSONValue.parse(data) }
    }

    private var events: [UInt8] = []

    /// The next event (comments skipped); nil at the end of the stream, or when none came within `timeout`
    /// (keep-alive comments alone do not keep a hung test waiting).
    func event(timeout: Duration = .seconds(60)) async throws -> Event? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let end = Self.find([0x0A, 0x0A], in: events) {
                let block = String(decoding: events[..<end], as: UTF8.self)
                events.removeSubrange(..<(end + 2))
                var event = Event()
                var any = false
                for field in block.split(separator: "\n") {
                    if field.hasPrefix(":") { continue }
                    any = true
                    if field.hasPrefix("id:") { event.id = String(field.dropFirst(3)) }
                    else if field.hasPrefix("event:") { event.event = String(field.dropFirst(6)) }
                    else if field.hasPrefix("data:") { event.data += String(field.dropFirst(5)) }
                }
                if any { return event }
                continue
            }
            guard try await chunk() else { return nil }
        }
        return nil
    }

    /// Moves one chunk of the chunked body into `events`; false at the last chunk or end of stream.
    private func chunk() async throws -> Bool {
        let sizeLine: String
        do { sizeLine = try await line() } catch { return false }
        guard let size = Int(sizeLine.split(separator: ";").first ?? "", radix: 16) else { throw TestError("bad chunk size \(sizeLine)") }
        if size == 0 { return false }
        while buffer.count < size + 2 {
            guard await fill() else { return false }
        }
        events += buffer[..<size]
        buffer.removeSubrange(..<(size + 2))
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] && haystack[i + 1] == needle[1] { return i }
        return nil
    }

    /// Opens an event stream; returns once its head arrived.
    static func events(port: Int, query: String = "", headers: [String: String] = [:]) async throws -> (RawHTTP, Int) {
        let client = try RawHTTP(port: port)
        var text = "GET /api/v1/events\(query) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        guard await client.send(text + "\r\n") else { throw TestError("could not send the events request") }
        let (status, _) = try await client.head()
        return (client, status)
    }
}

/// A daemon (`HeadlessServer` and its HTTP endpoint on 127.0.0.1, any free port) serving `served`
/// accounts, with `others` as ordinary clients, all on one in-process relay with real store files.
final class DaemonFixture: @unchecked Sendable {
    let network = InProcessNetwork()
    let relay: InProcessRelay
    let directory: TemporaryDirectory
    let served: [ClientDevice]
    let others: [ClientDevice]
    let server: HeadlessServer
    let endpoint: HTTPEndpoint
    private let tasks: [Task<Void, Never>]
    static let relayName = "127.0.0.1:7002"

    init(served names: [String], others otherNames: [String] = [],
         configure: (inout HTTPEndpointConfiguration) -> Void = { _ in }) async throws {
        relay = try network.addRelay(Self.relayName)
        directory = try TemporaryDirectory("http")
        var served: [ClientDevice] = [], others: [ClientDevice] = []
        for name in names { served.append(try await ClientDevice.create(name, on: relay, relayName: Self.relayName, in: directory)) }
        for name in otherNames { others.append(try await ClientDevice.create(name, on: relay, relayName: Self.relayName, in: directory)) }
        self.served = served
        self.others = others
        server = await HeadlessServer(engines: served.map(\.engine))
        var configuration = HTTPEndpointConfiguration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        endpoint = try await HTTPEndpoint.bind(configuration, serving: server)
        let server = server, endpoint = endpoint
        tasks = [Task { await server.runEngine() }, Task { await endpoint.run() }]
    }

    var port: Int { endpoint.port }

    func client() throws -> RawHTTP { try RawHTTP(port: port) }

    func rpc(_ body: String, headers: [String: String] = [:]) async throws -> RawHTTP.Response {
        try await client().request("POST", "/api/v1/rpc", body: body, headers: headers)
    }

    deinit {
        endpoint.close()
        for task in tasks { task.cancel() }
    }
}
