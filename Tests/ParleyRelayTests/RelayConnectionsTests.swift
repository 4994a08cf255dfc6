import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import ParleyClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The relay client's own HTTP/1.1 connections, against a scripted server on 127.0.0.1 that records every
/// request and counts connections.
///
/// A request's deadline runs on the wall clock from the moment it is made, while its steps (a slot, the
/// connection, the write) wait for a thread of Swift's cooperative pool, which `swift test` shares among all
/// the tests running at once: on a loaded machine a step has waited tens of seconds for one. So a test whose
/// subject is not the deadline gives its requests one no run reaches (`farDeadline`), and a close, an
/// answer or a refusal is then what ends each exchange, never the order in which threads were free. The
/// tests of the deadline itself use a short one against a server that never answers, or a manual clock.
/// The time limit only ends a hung test.
@Suite(.timeLimit(.minutes(10))) struct RelayConnectionsTests {
    static let farDeadline = TimeAmount.seconds(3_600)

    private func connections(_ server: ScriptedHTTPServer) -> RelayConnections {
        RelayConnections(target: ConnectTarget(url: "http://127.0.0.1:\(server.port)")!, context: nil)
    }

    @Test func keptAliveConnectionCarriesEveryRequest() async throws {
        let server = try ScriptedHTTPServer { _ in .answer(status: 200, body: "ok") }
        defer { server.close() }
        let http = connections(server)
        for _ in 0..<3 {
            let response = try await http.get()
            #expect(response.status == 200)
            #expect(String(buffer: response.body) == "ok")
        }
        #expect(server.connectionCount == 1)
    }

    @Test func requestCarriesHostLengthHeadersAndBody() async throws {
        let server = try ScriptedHTTPServer { _ in .answer(status: 204, body: "") }
        defer { server.close() }
        let response = try await connections(server).execute(.POST, "/v1/mailbox/ack?fetch=5", headers: [("Authorization", "Bearer t")],
                                                                body: ByteBuffer(string: "{\"ids\":[]}"), timeout: Self.farDeadline, limit: 1024)
        #expect(response.status == 204)
        let request = try #require(server.requests.first)
        #expect(request.hasPrefix("POST /v1/mailbox/ack?fetch=5 HTTP/1.1\r\n"))
        #expect(request.lowercased().contains("host: 127.0.0.1:\(server.port)\r\n"))
        #expect(request.lowercased().contains("content-length: 10\r\n"))
        #expect(request.contains("Authorization: Bearer t\r\n"))
        #expect(request.hasSuffix("\r\n\r\n{\"ids\":[]}"))
    }

    @Test func bodylessPostSaysItsLengthIsZero() async throws {
        let server = try ScriptedHTTPServer { _ in .answer(status: 201, body: "{}") }
        defer { server.close() }
        _ = try await connections(server).execute(.POST, "/v1/provisioning", headers: [], body: nil, timeout: Self.farDeadline, limit: 1024)
        #expect(server.requests.first?.lowercased().contains("content-length: 0\r\n") == true)
    }

    @Test func connectionCloseAnswerIsNotReused() async throws {
        let server = try ScriptedHTTPServer { _ in .answer(status: 413, body: "{}", close: true) }
        defer { server.close() }
        let http = connections(server)
        for _ in 0..<2 {
            let response = try await http.execute(.POST, "/v1/messages/x", headers: [], body: ByteBuffer(string: "x"), timeout: Self.farDeadline, limit: 1024)
            #expect(response.status == 413)
        }
        #expect(server.connectionCount == 2)
    }

    /// A GET to a relay that hangs up on every request is asked once more on a new connection, then fails
    /// with `closed`: the relay's hang-up, not a wait for the deadline, ends it.
    @Test func relayThatClosesWithoutAnsweringIsAClearError() async throws {
        let server = try ScriptedHTTPServer { _ in .hangUp }
        defer { server.close() }
        await #expect(throws: RelayConnections.Failure.closed) {
            _ = try await connections(server).get()
        }
        #expect(server.requests.count == 2 && server.connectionCount == 2)
    }

    /// The same on a manual clock: a connection that closes 999 ms into a 1 s deadline, before the answer's
    /// head, fails its exchange with `closed` at once, and the deadline passing afterwards changes nothing.
    @Test func aConnectionClosedJustBeforeTheDeadlineIsClosedNotTimedOut() throws {
        let (loop, channel) = try embeddedConnection()
        let answer = loop.makePromise(of: Exchange.Answer.self)
        try exchange(on: channel, answer: answer)
        let outcome = OutcomeBox()
        answer.futureResult.whenComplete { outcome.result = $0 }
        loop.advanceTime(by: .milliseconds(999))
        #expect(outcome.result == nil)
        channel.pipeline.fireChannelInactive()    // the relay hung up
        loop.advanceTime(by: .seconds(2))
        guard case .failure(let error) = outcome.result else {
            Issue.record("the exchange did not fail: \(String(describing: outcome.result))")
            return
        }
        #expect(error as? RelayConnections.Failure == .closed)
    }

    @Test func aGetOnAKeptAliveConnectionClosedUnderItIsAskedAgainOnANewOne() async throws {
        let server = try ScriptedHTTPServer { index in
            switch index {
            case 0: .answer(status: 200, body: "first")
            case 1: .hangUp    // as if the relay closed the idle connection just as the request arrived
            default: .answer(status: 200, body: "second")
            }
        }
        defer { server.close() }
        let http = connections(server)
        #expect(String(buffer: try await http.get().body) == "first")
        #expect(String(buffer: try await http.get().body) == "second")
        #expect(server.connectionCount == 2)
    }

    @Test func aPostIsNeverSentTwice() async throws {
        let server = try ScriptedHTTPServer { index in index == 0 ? .answer(status: 200, body: "first") : .hangUp }
        defer { server.close() }
        let http = connections(server)
        _ = try await http.get()
        await #expect(throws: RelayConnections.Failure.closed) {
            _ = try await http.execute(.POST, "/v1/messages/x", headers: [], body: ByteBuffer(string: "m"), timeout: Self.farDeadline, limit: 1024)
        }
        #expect(server.requests.count == 2)
        #expect(server.connectionCount == 1)
    }

    @Test func silentRelayTimesOutAndTheConnectionIsDropped() async throws {
        // By path, not by number: a loaded machine may use up the 200 ms connecting, and then the first
        // request is (rightly) never sent.
        let server = try ScriptedHTTPServer(byRequest: { _, request in
            request.hasPrefix("GET /slow ") ? .ignore : .answer(status: 200, body: "late")
        })
        defer { server.close() }
        let http = connections(server)
        await #expect(throws: RelayConnections.Failure.timedOut) {
            _ = try await http.get("/slow", timeout: .milliseconds(200))
        }
        // The timed-out connection is closed, not handed to the next request (which would read the late answer).
        let next = try await http.get()
        #expect(String(buffer: next.body) == "late")
        #expect(server.connectionCount == 2)    // the timed-out connection carried nothing more
    }

    @Test func connectionWithAnAnswerNobodyAskedForIsClosedNotReused() async throws {
        let server = try ScriptedHTTPServer { index in
            index == 0 ? .answerTwice(first: "asked", second: "not asked") : .answer(status: 200, body: "fresh")
        }
        defer { server.close() }
        let http = connections(server)
        let first = try await http.get()
        #expect(String(buffer: first.body) == "asked")
        try await eventually("the client to close the connection") { server.closedConnections == 1 }
        let second = try await http.get()
        #expect(String(buffer: second.body) == "fresh")
        #expect(server.connectionCount == 2)
    }

    /// On an EmbeddedChannel with a manual clock: the deadline covers the answer's head; after it, only a
    /// pause between parts of the body longer than the timeout ends the exchange.
    @Test func aBodyThatKeepsComingMayTakeLongerThanTheDeadline() throws {
        let (loop, channel) = try embeddedConnection()
        let flowing = loop.makePromise(of: Exchange.Answer.self)
        try exchange(on: channel, answer: flowing)
        loop.advanceTime(by: .milliseconds(900))
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5"])))
        for _ in 0..<5 {
            loop.advanceTime(by: .milliseconds(900))    // 4.5 s in all, against a 1 s timeout
            try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "x")))
        }
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(try flowing.futureResult.wait().body.readableBytes == 5)

        // The next exchange's body stops: 1 s after its last part, it fails and the connection closes.
        let stalled = loop.makePromise(of: Exchange.Answer.self)
        try exchange(on: channel, answer: stalled)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "5"])))
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "x")))
        try expectTimeout(of: stalled, oneSecondFromNow: loop, closing: channel)
    }

    @Test func anAnswerWithoutAHeadInTimeTimesOut() throws {
        let (loop, channel) = try embeddedConnection()
        let answer = loop.makePromise(of: Exchange.Answer.self)
        try exchange(on: channel, answer: answer)
        loop.advanceTime(by: .milliseconds(1_001))
        #expect(throws: RelayConnections.Failure.timedOut) { try answer.futureResult.wait() }
        #expect(!channel.isActive)
    }

    @Test func aRequestWhoseDeadlinePassedBeforeItsWriteIsNotWritten() throws {
        let (loop, channel) = try embeddedConnection()
        loop.advanceTime(by: .seconds(5))
        let answer = loop.makePromise(of: Exchange.Answer.self)
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/messages/x", headers: ["Host": "relay", "Content-Length": "1"])
        try? channel.writeOutbound(Exchange(head: head, body: ByteBuffer(string: "m"), deadline: loop.now - .seconds(1),
                                            bodyIdleTimeout: .seconds(1), limit: 1024, answer: answer))
        #expect(try channel.readOutbound(as: HTTPClientRequestPart.self) == nil)
        let outcome = OutcomeBox()
        answer.futureResult.whenComplete { outcome.result = $0 }    // at once on an EmbeddedEventLoop, if complete
        guard case .failure(let error) = outcome.result else {
            Issue.record("the exchange did not fail at once: \(String(describing: outcome.result))")
            return
        }
        #expect(error as? RelayConnections.Failure == .timedOut)
    }

    /// A large upload goes out a slice at a time behind a socket that takes each slice 0.9 s after the last:
    /// 3.6 s in all against a 1 s deadline, which each slice restarts. Then a socket that stops taking
    /// slices fails the next upload 1 s later.
    @Test func anUploadThatKeepsMovingMayTakeLongerThanTheDeadline() throws {
        let socket = SlowSocket()
        let (loop, channel) = try embeddedConnection(behind: socket)
        let size = 3 * ExchangeHandler.uploadSlice + 1
        let answer = loop.makePromise(of: Exchange.Answer.self)
        upload(size, on: channel, answer: answer)
        for _ in 0..<4 {
            #expect(socket.waiting == 1)
            loop.advanceTime(by: .milliseconds(900))
            socket.takeOne()
        }
        #expect(channel.isActive && socket.waiting == 0)
        #expect(socket.bodyBytes == size && socket.ended)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .noContent)))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(try answer.futureResult.wait().status == 204)

        let stalled = loop.makePromise(of: Exchange.Answer.self)
        upload(size, on: channel, answer: stalled)
        loop.advanceTime(by: .milliseconds(900))
        socket.takeOne()
        try expectTimeout(of: stalled, oneSecondFromNow: loop, closing: channel)
    }

    @Test func anAnswerBeforeTheUploadEndedLeavesTheConnectionUnfitForReuse() throws {
        let socket = SlowSocket()
        let (loop, channel) = try embeddedConnection(behind: socket)
        let answer = loop.makePromise(of: Exchange.Answer.self)
        upload(3 * ExchangeHandler.uploadSlice, on: channel, answer: answer)
        socket.takeOne()
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .payloadTooLarge)))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        let refused = try answer.futureResult.wait()
        #expect(refused.status == 413 && !refused.keepAlive)
        socket.takeOne()
        #expect(!socket.ended)    // the rest of the body is not sent after the answer
    }

    private func upload(_ size: Int, on channel: EmbeddedChannel, answer: EventLoopPromise<Exchange.Answer>) {
        let head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v1/attachments/a",
                                   headers: ["Host": "relay", "Content-Length": String(size)])
        // Not `writeOutbound`, which waits for the whole request to be written.
        channel.writeAndFlush(Exchange(head: head, body: ByteBuffer(repeating: 0x61, count: size), deadline: channel.eventLoop.now + .seconds(1),
                                       bodyIdleTimeout: .seconds(1), limit: 1024, answer: answer), promise: nil)
    }

    /// An ExchangeHandler on a connected EmbeddedChannel, whose clock moves only when told; `socket`, if
    /// given, stands between it and the wire.
    private func embeddedConnection(behind socket: SlowSocket? = nil) throws -> (EmbeddedEventLoop, EmbeddedChannel) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handlers: (socket.map { [$0] } ?? []) + [ExchangeHandler()], loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (loop, channel)
    }

    /// The exchange is still waiting 999 ms on, and has failed with `timedOut`, its connection closed, 2 ms later.
    private func expectTimeout(of exchange: EventLoopPromise<Exchange.Answer>, oneSecondFromNow loop: EmbeddedEventLoop,
                               closing channel: EmbeddedChannel) throws {
        loop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(2))
        #expect(throws: RelayConnections.Failure.timedOut) { try exchange.futureResult.wait() }
        #expect(!channel.isActive)
    }

    /// Writes a GET whose head must arrive within 1 s, whose body may pause for at most 1 s, and checks
    /// what reaches the wire.
    private func exchange(on channel: EmbeddedChannel, answer: EventLoopPromise<Exchange.Answer>) throws {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/attachments/a", headers: ["Host": "relay"])
        try channel.writeOutbound(Exchange(head: head, body: nil, deadline: channel.eventLoop.now + .seconds(1),
                                           bodyIdleTimeout: .seconds(1), limit: 1024, answer: answer))
        guard case .head(let written) = try channel.readOutbound(as: HTTPClientRequestPart.self) else {
            Issue.record("no request head written")
            return
        }
        #expect(written.uri == "/v1/attachments/a")
        guard case .end = try channel.readOutbound(as: HTTPClientRequestPart.self) else {
            Issue.record("no request end written")
            return
        }
    }

    @Test func aBodyThatStopsComingTimesOut() async throws {
        let server = try ScriptedHTTPServer { _ in .headThenSilence }
        defer { server.close() }
        await #expect(throws: RelayConnections.Failure.timedOut) {
            _ = try await connections(server).get("/v1/attachments/a", timeout: .milliseconds(200))
        }
    }

    @Test func aSwitchingProtocolsAnswerLeavesNoConnectionToReuse() async throws {
        let server = try ScriptedHTTPServer { index in
            index == 0 ? .raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                       : .answer(status: 200, body: "fresh")
        }
        defer { server.close() }
        let http = connections(server)
        let first = try await http.get()
        #expect(first.status == 101)
        let second = try await http.get()
        #expect(String(buffer: second.body) == "fresh")
        #expect(server.connectionCount == 2)
    }

    @Test func aRequestWhoseDeadlinePassedWhileWaitingForASlotIsNotSent() async throws {
        let limit = RelayConnections.maxInFlight
        let server = try ScriptedHTTPServer { index in index < limit ? .ignore : .answer(status: 200, body: "request \(index)") }
        defer { server.close() }
        let http = connections(server)
        let holders = (0..<limit).map { _ in
            Task { try await http.get(timeout: Self.farDeadline) }
        }
        try await eventually("every slot to be taken") { server.requests.count == limit }
        let late = Task { try await http.execute(.POST, "/v1/messages/x", headers: [], body: ByteBuffer(string: "m"), timeout: .milliseconds(50), limit: 1024) }
        try await eventually("the late request to wait") { http.slots.requestsWaiting == 1 }
        try await Task.sleep(for: .milliseconds(200))    // its deadline passes while it waits
        holders[0].cancel()
        await #expect(throws: RelayConnections.Failure.timedOut) { _ = try await late.value }
        for holder in holders { holder.cancel() }
        for holder in holders { _ = try? await holder.value }
        // The next request the server sees is this one: the late one never reached it.
        let next = try await http.get()
        #expect(String(buffer: next.body) == "request \(limit)")
    }

    @Test func answerLargerThanTheLimitIsRefused() async throws {
        let server = try ScriptedHTTPServer { _ in .answer(status: 200, body: String(repeating: "x", count: 4096)) }
        defer { server.close() }
        await #expect(throws: RelayConnections.Failure.tooLarge(limit: 100)) {
            _ = try await connections(server).get("/v1/attachments/a", limit: 100)
        }
    }

    @Test func cancellingTheTaskEndsAWaitForASilentRelay() async throws {
        let server = try ScriptedHTTPServer { _ in .ignore }
        defer { server.close() }
        let http = connections(server)
        let task = Task { try await http.get(timeout: Self.farDeadline) }
        try await eventually("the request to reach the server") { server.requests.count == 1 }
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
    }

    @Test func requestsBeyondTheCapWaitForASlot() async throws {
        let server = try ScriptedHTTPServer { _ in .ignore }
        defer { server.close() }
        let http = connections(server)
        let limit = RelayConnections.maxInFlight
        let tasks = (0..<(limit + 4)).map { _ in
            Task { try await http.get(timeout: Self.farDeadline) }
        }
        try await eventually("the cap's worth of requests to reach the server") { server.requests.count == limit }
        try await eventually("the rest to wait") { http.slots.requestsWaiting == 4 }
        #expect(server.connectionCount == limit)
        for task in tasks { task.cancel() }
        for task in tasks { _ = try? await task.value }
        #expect(http.slots.requestsInFlight == 0 && http.slots.requestsWaiting == 0)
    }

    @Test func slotsGoToWaitersInTurnAndACancelledWaiterLeavesNone() async throws {
        let slots = ConnectionSlots(limit: 1)
        try await slots.acquire()
        let order = OrderLog()
        let first = Task { try await slots.acquire(); order.append(1) }
        try await eventually("the first waiter") { slots.requestsWaiting == 1 }
        let cancelled = Task { try await slots.acquire(); order.append(99) }
        try await eventually("the second waiter") { slots.requestsWaiting == 2 }
        let third = Task { try await slots.acquire(); order.append(3) }
        try await eventually("the third waiter") { slots.requestsWaiting == 3 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(slots.requestsWaiting == 2)
        slots.release()
        try await first.value
        slots.release()
        try await third.value
        #expect(order.values == [1, 3])
        slots.release()
        #expect(slots.requestsInFlight == 0)
    }

    @Test func refusedConnectionSaysSo() async throws {
        let port = try RelayProcess.freePort()
        let relay = try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(port)"))
        do {
            _ = try await relay.health()
            Issue.record("a health check reached a relay that is not running")
        } catch {
            #expect((error as? ClientError)?.description == "cannot reach the relay: connection refused")
        }
    }

    @Test func targetsOfRelayURLs() throws {
        let plain = try #require(ConnectTarget(url: "http://127.0.0.1:8443"))
        #expect(plain.host == "127.0.0.1" && plain.port == 8443 && !plain.secure && plain.authority == "127.0.0.1:8443")
        #expect(plain.serverName == nil && plain.path == "/")
        let v6 = try #require(ConnectTarget(url: "wss://[::1]:9000/v1/push"))
        #expect(v6.host == "::1" && v6.port == 9000 && v6.secure && v6.authority == "[::1]:9000" && v6.path == "/v1/push")
        #expect(v6.serverName == nil)
        let named = try #require(ConnectTarget(url: "https://relay.example.org"))
        #expect(named.port == 443 && named.authority == "relay.example.org" && named.serverName == "relay.example.org")
        #expect(ConnectTarget(url: "ws://relay.example.org/v1/push")?.port == 80)
        for bad in ["relay.example.org", "ftp://h", "http://::1", "http://::1:8443", "http://", "http://h:0", "http://h:70000", "http://h:x", "http://[::1", "http://[::1]x"] {
            #expect(ConnectTarget(url: bad) == nil, "\(bad)")
        }
    }
}

/// Stands for a socket that takes a write only when told (`takeOne`), counting the request's body bytes.
final class SlowSocket: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = HTTPClientRequestPart
    private var held: [EventLoopPromise<Void>?] = []
    private(set) var bodyBytes = 0
    private(set) var ended = false
    var waiting: Int { held.count }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: promise?.succeed()
        case .body(.byteBuffer(let part)):
            bodyBytes += part.readableBytes
            held.append(promise)
        case .body: promise?.succeed()
        case .end:
            ended = true
            promise?.succeed()
        }
    }

    /// The socket takes the oldest write it holds.
    func takeOne() {
        guard !held.isEmpty else { return }
        held.removeFirst()?.succeed()
    }
}

final class OutcomeBox: @unchecked Sendable {
    var result: Result<Exchange.Answer, any Error>?
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ value: Int) { lock.withLock { list.append(value) } }
    var values: [Int] { lock.withLock { list } }
}

extension RelayConnections {
    func get(_ path: String = "/v1/health", timeout: TimeAmount = RelayConnectionsTests.farDeadline, limit: Int = 1024) async throws -> Response {
        try await execute(.GET, path, headers: [], body: nil, timeout: timeout, limit: limit)
    }
}

/// An HTTP/1.1 server on 127.0.0.1 on plain sockets and threads, answering each request (numbered from 0
/// across all connections) as `script` says, and recording what it was sent.
final class ScriptedHTTPServer: @unchecked Sendable {
    enum Reply: Sendable {
        case answer(status: Int, body: String, close: Bool = false)
        /// Close the connection without answering.
        case hangUp
        /// Read the request and never answer.
        case ignore
        /// Two answers in one write: the second one nobody asked for.
        case answerTwice(first: String, second: String)
        /// These bytes as the answer, then the connection is left open.
        case raw(String)
        /// A head promising a body that never comes.
        case headThenSilence
    }

    let port: Int
    private let fd: Int32
    private let script: @Sendable (Int, String) -> Reply
    private let lock = NSLock()
    private var recorded: [String] = []
    private var accepted = 0
    private var closed = 0
    /// Connections not yet closed; each is closed by the thread serving it, under the lock.
    private var clients: Set<Int32> = []

    convenience init(script: @escaping @Sendable (Int) -> Reply) throws {
        try self.init(byRequest: { index, _ in script(index) })
    }

    /// `byRequest` gets the request's number and its text (head and body).
    init(byRequest script: @escaping @Sendable (Int, String) -> Reply) throws {
        self.script = script
        let (fd, port) = try listeningLoopbackSocket(backlog: 16)
        self.fd = fd
        self.port = port
        let listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                // `close()` shut the socket down: only this thread closes it, so no other test's descriptor
                // that reuses the number can be touched.
                if client < 0, errno == EINTR || errno == ECONNABORTED { continue }
                guard client >= 0 else { _ = Glibc.close(listener); return }
                lock.withLock { accepted += 1; clients.insert(client) }
                Thread.detachNewThread { [self] in serve(client) }
            }
        }
    }

    var connectionCount: Int { lock.withLock { accepted } }
    /// Connections the client closed (or that ended), as the server saw them.
    var closedConnections: Int { lock.withLock { closed } }
    var requests: [String] { lock.withLock { recorded } }

    /// Stops accepting and ends every connection (the threads close the descriptors).
    func close() {
        _ = shutdown(fd, Int32(SHUT_RDWR))
        lock.withLock { for client in clients { _ = shutdown(client, Int32(SHUT_RDWR)) } }
    }

    private func serve(_ client: Int32) {
        defer { lock.withLock { clients.remove(client); closed += 1; _ = Glibc.close(client) } }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            // One request: the head up to CRLFCRLF, then Content-Length bytes of body.
            var request: [UInt8]?
            while request == nil {
                if let end = Self.headEnd(pending) {
                    let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                    let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                        line.hasPrefix("content-length:") ? Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) : nil
                    }.first ?? 0
                    if pending.count >= end + length {
                        request = Array(pending[..<(end + length)])
                        pending.removeFirst(end + length)
                        break
                    }
                }
                let n = read(client, &chunk, chunk.count)
                guard n > 0 else { return }
                pending += chunk[..<n]
            }
            let text = String(decoding: request!, as: UTF8.self)
            let index = lock.withLock { () -> Int in
                recorded.append(text)
                return recorded.count - 1
            }
            switch script(index, text) {
            case .hangUp:
                return
            case .ignore:
                while read(client, &chunk, chunk.count) > 0 {}
                return
            case .raw(let text):
                let bytes = Array(text.utf8)
                guard write(client, bytes, bytes.count) == bytes.count else { return }
            case .headThenSilence:
                let head = Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n".utf8)
                guard write(client, head, head.count) == head.count else { return }
                while read(client, &chunk, chunk.count) > 0 {}
                return
            case .answerTwice(let first, let second):
                let bytes = Array((Self.response(200, first) + Self.response(200, second)).utf8)
                guard write(client, bytes, bytes.count) == bytes.count else { return }
            case .answer(let status, let body, let close):
                let bytes = Array(Self.response(status, body, close: close).utf8)
                guard write(client, bytes, bytes.count) == bytes.count, !close else { return }
            }
        }
    }

    private static func response(_ status: Int, _ body: String, close: Bool = false) -> String {
        // A 204 has no body and must not say how long it is (RFC 9110 §8.6).
        let length = status == 204 ? "" : "Content-Length: \(body.utf8.count)\r\n"
        return "HTTP/1.1 \(status) Whatever\r\n" + length + (close ? "Connection: close\r\n" : "") + "\r\n" + body
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }
}
