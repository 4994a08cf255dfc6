import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ParleyCrypto

/// HTTP/1.1 exchanges with one relay over kept-alive connections, on swift-nio directly.
///
/// Why not AsyncHTTPClient: on a loopback GET it spent 0.24 ms of CPU per request on its own state
/// machines and hops (the relay's whole answer costs 0.17 ms), and a message crosses two to four such
/// requests on its way. Here a request is one write into the connection's pipeline and one promise back.
/// One request at a time per connection (no pipelining); idle connections are kept for reuse.
final class RelayConnections: @unchecked Sendable {
    struct Response {
        let status: Int
        let body: ByteBuffer
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case refused
        case timedOut
        case closed
        case tooLarge(limit: Int)
        case connect(String)

        var description: String {
            switch self {
            case .refused: "connection refused"
            case .timedOut: "timed out"
            case .closed: "the relay closed the connection before answering"
            case .tooLarge(let limit): "the relay's answer is larger than \(limit) bytes"
            case .connect(let reason): reason
            }
        }
    }

    /// Idle connections are reused only while younger than this: the relay closes a connection idle for
    /// 120 s (`--idle-timeout`), and a request written just as it does so would be lost with the connection.
    static let idleLifetime = TimeAmount.seconds(50)
    static let maxIdle = 8
    /// Requests in flight at once (each on a connection of its own); AsyncHTTPClient's default was 8.
    static let maxInFlight = 16

    private let target: ConnectTarget
    private let context: NIOSSLContext?
    let slots = ConnectionSlots(limit: RelayConnections.maxInFlight)
    private let lock = ParleyCrypto.Lock()
    private var idle: [(channel: any Channel, since: NIODeadline)] = []

    init(target: ConnectTarget, context: NIOSSLContext?) {
        self.target = target
        self.context = context
    }

    /// Sends one request and collects the whole answer (at most `limit` bytes of body) before `timeout`.
    /// Cancelling the calling task closes the connection and throws `CancellationError`.
    func execute(_ method: HTTPMethod, _ path: String, headers extra: [(String, String)], body: ByteBuffer?,
                 timeout: TimeAmount, limit: Int) async throws -> Response {
        let deadline = NIODeadline.now() + timeout
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: target.authority)
        for (name, value) in extra { headers.add(name: name, value: value) }
        if body != nil || method == .POST || method == .PUT { headers.add(name: "Content-Length", value: String(body?.readableBytes ?? 0)) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)

        try await slots.acquire()
        defer { slots.release() }
        // Waited for a slot past its deadline: not sent at all (a send the caller counts as failed must not
        // reach the relay, or the outbox posts it twice).
        guard NIODeadline.now() < deadline else { throw Failure.timedOut }
        let opened = OpenedChannel()
        return try await withTaskCancellationHandler {
            do {
                return try await exchange(head, body: body, deadline: deadline, timeout: timeout, limit: limit, opened: opened, reuse: true)
            } catch Failure.closed where method == .GET && !Task.isCancelled && NIODeadline.now() < deadline {
                // A kept-alive connection the relay (or a proxy in front of it) closed just as the request went
                // out: a GET changes nothing, so it is asked once more on a new connection.
                return try await exchange(head, body: body, deadline: deadline, timeout: timeout, limit: limit, opened: opened, reuse: false)
            }
        } onCancel: {
            opened.cancel()
        }
    }

    /// One attempt: the request on a kept-alive connection (`reuse`) or a new one, and its answer.
    private func exchange(_ head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline, timeout: TimeAmount, limit: Int,
                          opened: OpenedChannel, reuse: Bool) async throws -> Response {
        let channel = try await acquire(deadline: deadline, opened: opened, reuse: reuse)
        let promise = channel.eventLoop.makePromise(of: Exchange.Answer.self)
        // A connection that closed before the write reached the handler fails the write instead.
        let exchange = Exchange(head: head, body: body, deadline: deadline, bodyIdleTimeout: timeout, limit: limit, answer: promise)
        channel.writeAndFlush(exchange).whenFailure { error in
            promise.fail(error is ChannelError ? Failure.closed : error)
        }
        let answer: Exchange.Answer
        do { answer = try await promise.futureResult.get() } catch {
            channel.close(promise: nil)
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        // Once back in the pool the connection is another request's: a late cancellation must not close it.
        // Only a final answer on a kept-alive connection leaves it fit for the next request (after a 101
        // the connection speaks another protocol).
        if answer.keepAlive && answer.status >= 200 && opened.detach() { release(channel) } else { channel.close(promise: nil) }
        return Response(status: answer.status, body: answer.body)
    }

    private func acquire(deadline: NIODeadline, opened: OpenedChannel, reuse: Bool) async throws -> any Channel {
        let now = NIODeadline.now()
        while reuse, let reused = lock.withLock({ idle.popLast() }) {
            if reused.channel.isActive && reused.since + Self.idleLifetime > now {
                opened.set(reused.channel)
                return reused.channel
            }
            reused.channel.close(promise: nil)
        }
        let context = context, sni = target.serverName
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(max(.milliseconds(1), deadline - now))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                opened.set(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: sni)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
        do {
            let channel = try await bootstrap.connect(host: target.host, port: target.port).get()
            // With several addresses for a name, the initializer ran for every attempt: make sure the
            // winner is known (closed at once if the task was cancelled meanwhile).
            opened.set(channel)
            return channel
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw Self.connectFailure(error)
        }
    }

    private func release(_ channel: any Channel) {
        let kept = lock.withLock { () -> Bool in
            guard channel.isActive, idle.count < Self.maxIdle else { return false }
            idle.append((channel, .now()))
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    private static func connectFailure(_ error: any Error) -> any Error {
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED { return Failure.refused }
        if let failure = error as? NIOConnectionError {
            if failure.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) { return Failure.refused }
            if failure.dnsAAAAError != nil || failure.dnsAError != nil, failure.connectionErrors.isEmpty {
                return Failure.connect("cannot resolve \(failure.host)")
            }
        }
        if error is ChannelError, case .connectTimeout = error as! ChannelError { return Failure.timedOut }
        return error
    }
}

/// Where to connect for an http(s) or ws(s) URL: the bare host (an IPv6 address without its brackets),
/// the port, the Host header, and the TLS server name — only for a DNS name: an IP address gets no SNI
/// (RFC 6066 §3) and is checked against the certificate's IP entries, which NIOSSL does when given none.
struct ConnectTarget: Sendable {
    let host: String
    let port: Int
    let secure: Bool
    let authority: String
    let path: String

    init?(url: String) {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let scheme = url[..<schemeEnd.lowerBound]
        guard ["http", "https", "ws", "wss"].contains(scheme) else { return nil }
        secure = scheme == "https" || scheme == "wss"
        let rest = url[schemeEnd.upperBound...]
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = String(rest[..<slash])
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var named = hostPort
        var explicitPort: Int?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            named = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { return nil }
                explicitPort = p
            }
        } else if hostPort.filter({ $0 == ":" }).count > 1 {
            return nil    // an IPv6 address must be in brackets
        } else if let colon = hostPort.lastIndex(of: ":") {
            named = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]) else { return nil }
            explicitPort = p
        }
        guard !named.isEmpty, (explicitPort ?? 1) > 0, (explicitPort ?? 1) < 65536 else { return nil }
        host = named
        port = explicitPort ?? (secure ? 443 : 80)
        authority = (named.contains(":") ? "[\(named)]" : named) + (explicitPort.map { ":\($0)" } ?? "")
    }

    var serverName: String? { (try? SocketAddress(ipAddress: host, port: port)) != nil ? nil : host }
}

/// One request and the promise its answer completes.
struct Exchange {
    struct Answer {
        let status: Int
        let body: ByteBuffer
        let keepAlive: Bool
    }

    let head: HTTPRequestHead
    let body: ByteBuffer?
    /// For the request to be written and the answer's head to arrive.
    let deadline: NIODeadline
    /// Then, the longest pause allowed between parts of the answer's body (a large download may take
    /// longer than the deadline as a whole, as long as it keeps coming).
    let bodyIdleTimeout: TimeAmount
    let limit: Int
    let answer: EventLoopPromise<Answer>
}

/// Writes an `Exchange`'s request and completes its promise with the answer; fails it when the
/// connection closes first, the deadline passes (the connection is then closed) or the body is too large.
final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<Exchange.Answer>?
    private var timer: Scheduled<Void>?
    private var limit = 0
    private var bodyIdleTimeout = TimeAmount.seconds(30)
    private var status = 0
    private var keepAlive = true
    private var body = ByteBuffer()
    private var headReceived = false
    /// What is left of a large body, and the promise of the request's end, while it goes out slice by slice.
    private var unsent: ByteBuffer?
    private var endWritten: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard pending == nil, context.channel.isActive else {
            exchange.answer.fail(RelayConnections.Failure.closed)
            promise?.fail(RelayConnections.Failure.closed)
            return
        }
        // Connecting may have used up the deadline: a request the caller will count as failed is not sent.
        guard context.eventLoop.now < exchange.deadline else {
            exchange.answer.fail(RelayConnections.Failure.timedOut)
            promise?.fail(RelayConnections.Failure.timedOut)
            return
        }
        pending = exchange.answer
        limit = exchange.limit
        bodyIdleTimeout = exchange.bodyIdleTimeout
        body.clear()
        headReceived = false
        arm(context, deadline: exchange.deadline)
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        let payload = exchange.body ?? ByteBuffer()
        guard payload.readableBytes > Self.uploadSlice else {
            if payload.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(payload))), promise: nil) }
            context.write(wrapOutboundOut(.end(nil)), promise: promise)
            return
        }
        unsent = payload
        endWritten = promise
        writeNextSlice(context)
    }

    /// A large body (an attachment) goes out a slice at a time, and each slice the socket takes restarts the
    /// deadline: an upload over a slow link may take longer than the deadline as a whole, as long as it moves.
    static let uploadSlice = 256 * 1024

    private func writeNextSlice(_ context: ChannelHandlerContext) {
        guard pending != nil, var rest = unsent else { return }    // answered, failed or closed meanwhile
        guard rest.readableBytes > 0, let slice = rest.readSlice(length: min(rest.readableBytes, Self.uploadSlice)) else {
            unsent = nil
            let promise = endWritten
            endWritten = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
            return
        }
        unsent = rest
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenSuccess {
            let (handler, context) = bound.value
            if !handler.headReceived { handler.arm(context, deadline: context.eventLoop.now + handler.bodyIdleTimeout) }
            handler.writeNextSlice(context)
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(slice))), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Bytes no request asked for (a second answer, or one on an idle connection) would be taken for
        // the next request's answer: such a connection is closed instead.
        guard pending != nil else {
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            headReceived = true
            status = Int(head.status.code)
            // An answer before the whole request went out (a refusal of an upload) leaves the connection
            // mid-request: it cannot carry another one.
            keepAlive = head.isKeepAlive && unsent == nil
            if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
                finish(.failure(RelayConnections.Failure.tooLarge(limit: limit)))
                context.close(promise: nil)
                return
            }
            arm(context, deadline: context.eventLoop.now + bodyIdleTimeout)
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= limit else {
                finish(.failure(RelayConnections.Failure.tooLarge(limit: limit)))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
            arm(context, deadline: context.eventLoop.now + bodyIdleTimeout)
        case .end:
            finish(.success(Exchange.Answer(status: status, body: body, keepAlive: keepAlive)))
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(RelayConnections.Failure.closed))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    /// (Re)starts the timer that fails the exchange and closes the connection at `deadline`.
    private func arm(_ context: ChannelHandlerContext, deadline: NIODeadline) {
        timer?.cancel()
        guard let exchange = pending?.futureResult else { return }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            // Only for the exchange it was set for (a cancelled timer that already ran is harmless).
            guard bound.value.handler.pending?.futureResult === exchange else { return }
            bound.value.handler.finish(.failure(RelayConnections.Failure.timedOut))
            bound.value.context.close(promise: nil)
        }
    }

    private func finish(_ result: Result<Exchange.Answer, any Error>) {
        timer?.cancel()
        timer = nil
        unsent = nil
        endWritten?.fail(RelayConnections.Failure.closed)
        endWritten = nil
        guard let promise = pending else { return }
        pending = nil
        promise.completeWith(result)
    }
}

/// A connection's channels as soon as they exist, so a cancelled task can close them (NIO does not cancel a
/// connect or a wait for an answer by itself). A name with several addresses makes one channel per connection
/// attempt; all of them are closed.
final class OpenedChannel: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var channels: [any Channel] = []
    private var cancelled = false

    func set(_ channel: any Channel) {
        let close = lock.withLock { () -> Bool in
            if !channels.contains(where: { $0 === channel }) { channels.append(channel) }
            return cancelled
        }
        if close { channel.close(promise: nil) }
    }

    func cancel() {
        let channels = lock.withLock { () -> [any Channel] in
            cancelled = true
            return self.channels
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Forgets the channels, so a later `cancel()` leaves them alone; false if cancelled already.
    func detach() -> Bool {
        lock.withLock {
            channels = []
            return !cancelled
        }
    }
}
