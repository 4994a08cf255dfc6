import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import ParleyCrypto
#if canImport(Glibc)
import Glibc
#endif

/// How `parley daemon --http` listens and what it tolerates from a client.
public struct HTTPEndpointConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// With a token, every request needs `Authorization: Bearer <token>`; required off loopback.
    public var token: SecretBytes?
    /// A larger request body is answered 413 and the connection closed (a `data:` attachment counts here).
    public var maxBodyBytes = 16 << 20
    /// A request's head and body must have arrived this long after the daemon started waiting for it; a
    /// connection idle between requests is closed after the same time (slow or silent clients).
    public var requestTimeout: Duration = .seconds(30)
    /// Open event streams; one more is answered 503.
    public var maxEventStreams = 256
    /// An event stream with nothing to say sends a comment this often, so a dead client is noticed.
    public var keepAliveInterval: Duration = .seconds(15)
    /// The most requests one batch may hold.
    public var maxBatch = 100

    public init(host: String, port: Int, token: SecretBytes? = nil) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// The shortest token accepted: a guessable token would make the bearer check a formality.
    public static let minimumTokenLength = 16

    /// `HOST:PORT` or `[IPv6]:PORT`, with an IP address or `localhost` as the host.
    public static func parseAddress(_ text: String) throws(HTTPEndpointError) -> (host: String, port: Int) {
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            guard text[close...].hasPrefix("]:") else { throw .badAddress(text) }
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { throw .badAddress(text) }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let number = Int(port), (0...65_535).contains(number), !host.isEmpty else { throw .badAddress(text) }
        let name = host == "localhost" ? "127.0.0.1" : String(host)
        guard isIPAddress(name) else { throw .badAddress(text) }
        return (name, number)
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Loopback: all of 127.0.0.0/8 and ::1 (only this machine can reach them). Anything else, the
    /// unspecified 0.0.0.0 and :: included, is reachable from elsewhere and needs a token.
    public static func isLoopback(_ host: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) } == [UInt8](repeating: 0, count: 15) + [1]
        }
        return false
    }

    /// Reads a token file: its first line, which must be at least `minimumTokenLength` characters.
    public static func readToken(file: String) throws(HTTPEndpointError) -> SecretBytes {
        guard var data = FileManager.default.contents(atPath: file) else { throw .tokenFile("cannot read the token file \(file)") }
        defer { data.resetBytes(in: 0..<data.count) }
        var line = [UInt8](data.prefix { $0 != 0x0A && $0 != 0x0D })
        defer { wipe(&line) }
        guard line.count >= minimumTokenLength, line.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .tokenFile("the token in \(file) must be at least \(minimumTokenLength) printable ASCII characters without spaces")
        }
        return SecretBytes(line)
    }
}

public enum HTTPEndpointError: Error, CustomStringConvertible, Sendable {
    case badAddress(String)
    case tokenRequired(String)
    case tokenFile(String)

    public var description: String {
        switch self {
        case .badAddress(let text): "--http \(text): give HOST:PORT with an IP address (or localhost), e.g. 127.0.0.1:8080 or [::1]:8080"
        case .tokenRequired(let host): "--http on \(host), which is not a loopback address, needs --http-token-file (clients then send Authorization: Bearer TOKEN)"
        case .tokenFile(let text): text
        }
    }
}

/// signal-cli's HTTP endpoint over the daemon's one dispatcher: `POST /api/v1/rpc` (a JSON-RPC request or
/// batch), `GET /api/v1/events` (Server-Sent Events: `receive` notifications, resumable by event id) and
/// `GET /api/v1/check`. On swift-nio's HTTP/1.1 codec.
public final class HTTPEndpoint: Sendable {
    typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    let server: HeadlessServer
    let configuration: HTTPEndpointConfiguration
    let listener: NIOAsyncChannel<Connection, Never>
    let streams = StreamCount()
    /// The port it listens on (the one chosen when the configuration asked for 0).
    public let port: Int

    private init(server: HeadlessServer, configuration: HTTPEndpointConfiguration, listener: NIOAsyncChannel<Connection, Never>) {
        self.server = server
        self.configuration = configuration
        self.listener = listener
        port = listener.channel.localAddress?.port ?? configuration.port
    }

    /// Binds the listening socket; refuses a non-loopback address without a token.
    public static func bind(_ configuration: HTTPEndpointConfiguration, serving server: HeadlessServer) async throws -> HTTPEndpoint {
        guard configuration.token != nil || HTTPEndpointConfiguration.isLoopback(configuration.host) else {
            throw HTTPEndpointError.tokenRequired(configuration.host)
        }
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try Connection(wrappingChannelSynchronously: channel)
                }
            }
        return HTTPEndpoint(server: server, configuration: configuration, listener: listener)
    }

    /// Serves clients until `close`.
    public func run() async {
        try? await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.serve(connection) }
                }
            }
        }
    }

    public func close() {
        listener.channel.close(promise: nil)
    }

    /// What a request left behind once its head and body were read.
    enum Incoming {
        case request(HTTPRequestHead, ByteBuffer)
        case tooLarge
    }

    func serve(_ connection: Connection) async {
        let channel = connection.channel
        try? await connection.executeThenClose { inbound, outbound in
            var parts = inbound.makeAsyncIterator()
            while true {
                // One clock for the whole request: a client trickling its headers or body is cut off.
                let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(configuration.requestTimeout)) { channel.close(promise: nil) }
                let incoming = try await read(&parts, outbound)
                deadline.cancel()
                switch incoming {
                case nil: return
                case .tooLarge?:
                    try await write(outbound, .payloadTooLarge, text: "the request body is larger than \(configuration.maxBodyBytes) bytes", close: true)
                    return
                case .request(let head, let body)?:
                    guard try await answer(head, body, outbound, channel), head.isKeepAlive else { return }
                }
            }
        }
    }

    /// Reads one request's head and body (nil when the client closed or sent something out of order).
    func read(_ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
              _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws -> Incoming? {
        guard case .head(let head)? = try await parts.next() else { return nil }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > configuration.maxBodyBytes { return .tooLarge }
        // curl asks before sending a body over 1 KiB; without an answer it waits a second.
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
        }
        var body = ByteBuffer()
        while let part = try await parts.next() {
            switch part {
            case .body(var chunk):
                guard body.readableBytes + chunk.readableBytes <= configuration.maxBodyBytes else { return .tooLarge }
                body.writeBuffer(&chunk)
            case .end: return .request(head, body)
            case .head: return nil
            }
        }
        return nil
    }

    /// Answers one request; false when the connection is to close after it.
    func answer(_ head: HTTPRequestHead, _ body: ByteBuffer, _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                _ channel: any Channel) async throws -> Bool {
        guard authorized(head) else {
            var headers = HTTPHeaders()
            headers.add(name: "WWW-Authenticate", value: "Bearer")
            try await write(outbound, .unauthorized, text: "this endpoint needs Authorization: Bearer TOKEN", headers: headers)
            return true
        }
        let (path, query) = Self.split(head.uri)
        switch (path, head.method) {
        case ("/api/v1/rpc", .POST):
            guard let type = head.headers.first(name: "content-type"), type.lowercased().hasPrefix("application/json") else {
                try await write(outbound, .unsupportedMediaType, text: "send the request as Content-Type: application/json")
                return true
            }
            if let response = await rpc(String(buffer: body)) {
                try await write(outbound, .ok, json: response)
            } else {
                // Only notifications: nothing to answer (signal-cli's 201).
                try await write(outbound, .created, text: nil)
            }
            return true
        case ("/api/v1/events", .GET):
            try await events(head, query, outbound, channel)
            return false
        case ("/api/v1/check", .GET):
            try await write(outbound, .ok, text: nil)
            return true
        case ("/api/v1/rpc", _), ("/api/v1/events", _), ("/api/v1/check", _):
            try await write(outbound, .methodNotAllowed, text: nil)
            return true
        default:
            try await write(outbound, .notFound, text: nil)
            return true
        }
    }

    /// The bearer token, compared in constant time (a length mismatch fails without comparing).
    func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let token = configuration.token else { return true }
        guard let value = head.headers.first(name: "authorization"), value.count > 7,
              value.prefix(7).lowercased() == "bearer " else { return false }
        return SecretBytes(Array(value.utf8.dropFirst(7))).constantTimeEquals(token)
    }

    // MARK: POST /api/v1/rpc

    /// One request or a batch, through the same dispatcher as the socket; nil when nothing is answered.
    func rpc(_ text: String) async -> JSONValue? {
        let peer = HTTPRequestPeer()
        guard let value = JSONValue.parse(text) else { return RPCResponse.error(id: .null, RPCError(.parseError, "Parse error")) }
        guard case .array(let items) = value else { return await respond(value, peer) }
        guard !items.isEmpty, items.count <= configuration.maxBatch else {
            return RPCResponse.error(id: .null, RPCError(.invalidRequest, "Invalid Request: a batch holds 1 to \(configuration.maxBatch) requests"))
        }
        var responses: [JSONValue] = []
        for item in items {
            if let response = await respond(item, peer) { responses.append(response) }
        }
        return responses.isEmpty ? nil : .array(responses)
    }

    func respond(_ value: JSONValue, _ peer: HTTPRequestPeer) async -> JSONValue? {
        switch RPCRequest.parse(value) {
        case .success(let request): await server.respond(to: request, from: peer)
        case .failure(let failure): RPCResponse.error(id: failure.id, failure.error)
        }
    }

    // MARK: GET /api/v1/events

    func events(_ head: HTTPRequestHead, _ query: [String: String], _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
                _ channel: any Channel) async throws {
        let accounts: [HeadlessAccount]
        if let named = query["account"], !named.isEmpty {
            guard let account = server.account(named) else {
                try await write(outbound, .badRequest, text: "account \(named) is not served by this daemon", close: true)
                return
            }
            accounts = [account]
        } else {
            accounts = server.accounts
        }
        let cursorName = query["cursor"] ?? "default"
        guard NotificationHub.validCursorName(cursorName) else {
            try await write(outbound, .badRequest, text: "cursor must be 1-64 letters, digits, '-', '_' or '.'", close: true)
            return
        }
        let names = accounts.map(\.context.account.description)
        var resume: [String: Int64] = [:]
        if let last = head.headers.first(name: "last-event-id"), !last.isEmpty {
            guard let parsed = EventStreamPeer.parseId(last, accounts: names) else {
                try await write(outbound, .badRequest, text: "Last-Event-ID is not an id this daemon gave", close: true)
                return
            }
            resume = parsed
        }
        guard streams.acquire(limit: configuration.maxEventStreams) else {
            var headers = HTTPHeaders()
            headers.add(name: "Retry-After", value: "5")
            try await write(outbound, .serviceUnavailable, text: "too many open event streams", headers: headers, close: true)
            return
        }
        defer { streams.release() }
        var start: [String: Int64] = [:]
        for account in accounts {
            let name = account.context.account.description
            if let resumed = resume[name] { start[name] = resumed } else { start[name] = try await account.context.hub.cursor(named: cursorName) }
        }
        let peer = EventStreamPeer(outbound: outbound, channel: channel, start: start, multiAccount: accounts.count > 1)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "Connection", value: "close")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        for account in accounts {
            let hub = account.context.hub
            _ = try await hub.subscribe(peer, cursorName: cursorName, after: start[account.context.account.description])
            await hub.release(peer)
        }
        let keepAlive = Task { [interval = configuration.keepAliveInterval] in
            while !peer.isClosed {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { return }
                peer.offerComment()
            }
        }
        let watch = Task {
            try? await channel.closeFuture.get()
            peer.close()
        }
        await peer.runWriter()
        keepAlive.cancel()
        for account in accounts { await account.context.hub.unsubscribe(peer) }
        _ = await watch.result
    }

    // MARK: Writing responses

    func write(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ status: HTTPResponseStatus, json: JSONValue) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        try await write(outbound, status, body: Array(json.serialized.utf8), headers: headers, close: false)
    }

    func write(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ status: HTTPResponseStatus, text: String?,
               headers: HTTPHeaders = HTTPHeaders(), close: Bool = false) async throws {
        var headers = headers
        if text != nil { headers.add(name: "Content-Type", value: "text/plain; charset=utf-8") }
        try await write(outbound, status, body: text.map { Array(($0 + "\n").utf8) } ?? [], headers: headers, close: close)
    }

    func write(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, _ status: HTTPResponseStatus, body: [UInt8],
               headers: HTTPHeaders, close: Bool) async throws {
        var headers = headers
        headers.add(name: "Content-Length", value: String(body.count))
        if close { headers.add(name: "Connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        if !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
        try await outbound.write(.end(nil))
    }

    /// The path and the decoded query parameters of a request target.
    static func split(_ uri: String) -> (String, [String: String]) {
        guard let components = URLComponents(string: uri) else { return (uri, [:]) }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] where query[item.name] == nil { query[item.name] = item.value ?? "" }
        return (components.path, query)
    }
}

/// The peer of a `POST /api/v1/rpc` request: it lives for one response, so it takes no notifications.
final class HTTPRequestPeer: NotificationPeer {
    var isClosed: Bool { true }
    func deliver(_ method: String, _ params: JSONValue, account: String, cursor: Int64?) async -> Bool { false }
    func offer(_ method: String, _ params: JSONValue) -> Bool { false }
}

/// How many event streams are open.
final class StreamCount: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0

    func acquire(limit: Int) -> Bool {
        lock.withLock {
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func release() { lock.withLock { open -= 1 } }
    var count: Int { lock.withLock { open } }
}
