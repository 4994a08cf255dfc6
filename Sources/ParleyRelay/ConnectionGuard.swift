import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// What the HTTP server does not bound by itself before a connection has sent its first request head:
/// Hummingbird adds its idle timeout and its reaction to a graceful shutdown only once that head has been
/// parsed, so a client that connects and sends nothing (or half a head) held a descriptor for ever and
/// kept the relay running after SIGTERM. `ConnectionGuard` sits in front of the HTTP handlers (behind
/// TLS) and closes such a connection when the first head is not complete within `headDeadline`, or when
/// a graceful shutdown begins; it also caps open connections, in all and per client address. And when the server
/// half-closes a plain HTTP connection (an answer with "Connection: close", such as a 413 before the body
/// was read), it keeps reading and discarding for a moment, then closes fully: the HTTP layer no longer
/// reads, so a client still writing the body would otherwise block until its own timeout.
struct GuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let headDeadline: TimeAmount
    let connections: ConnectionsPerAddress?
    let all: OpenConnections?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard(headDeadline: headDeadline, connections: connections, all: all))
        }.flatMap { inner.setup(channel: channel, logger: logger) }.flatMapThrowing { value in
            // A request head the parser refuses (a bad version, a duplicate Content-Length, an oversized
            // header or path, bytes that are no HTTP at all) gets a 400 and the connection is closed. The
            // HTTP layer leaves parser errors to the application and Hummingbird ends the connection's task
            // without closing it, so such a head was never answered: the connection stayed open, past the
            // header and idle timeouts, for as long as the client liked.
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(ParserErrorAnswer(), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// How long a half-closed HTTP connection keeps being drained before it is closed fully.
    static let linger = TimeAmount.seconds(2)
    /// How long after a graceful shutdown begins a connection that is still open is closed regardless.
    static let shutdownGrace = TimeAmount.seconds(4)

    private let headDeadline: TimeAmount
    private let connections: ConnectionsPerAddress?
    private let all: OpenConnections?
    private var counted: String?
    private var countedInAll = false
    /// `start` ran (from handlerAdded or channelActive, whichever saw the channel active first).
    private var started = false
    private var deadline: Scheduled<Void>?
    private var finalClose: Scheduled<Void>?
    private var headComplete = false
    /// Whether a byte other than CR or LF has arrived (the parser skips line ends before a request line),
    /// and how many bytes of "\r\n\r\n" (the end of a request head) the bytes since end with.
    private var requestStarted = false
    private var matched = 0
    /// The first response: "HTTP/1.1 101" means the connection became a WebSocket, whose close handshake
    /// needs its input and is left alone.
    private var firstResponseSeen = false
    private var upgraded = false
    private var draining = false

    init(headDeadline: TimeAmount, connections: ConnectionsPerAddress?, all: OpenConnections?) {
        self.headDeadline = headDeadline
        self.connections = connections
        self.all = all
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started, !headComplete else { return }
        started = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        // Past the overall cap the descriptor goes back at once, before anything else is spent on it.
        if let all {
            guard all.open() else {
                context.eventLoop.execute { Self.closeBeforeRequest(bound.value) }
                return
            }
            countedInAll = true
        }
        if let connections, let address = context.channel.remoteAddress?.ipAddress {
            guard connections.open(address) else {
                // On the next tick: the HTTP handlers may not be in the pipeline yet.
                context.eventLoop.execute { Self.closeBeforeRequest(bound.value) }
                return
            }
            counted = address
        }
        deadline = context.eventLoop.scheduleTask(in: headDeadline) { Self.closeBeforeRequest(bound.value) }
    }

    /// Closes a connection that has not sent a request: told as the peer closing its input, which the HTTP
    /// upgrade handler takes quietly (a plain close would be logged as an error for every such connection).
    private static func closeBeforeRequest(_ context: ChannelHandlerContext) {
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if draining {
            context.read()
            return
        }
        if !headComplete {
            for byte in unwrapInboundIn(data).readableBytesView {
                if !requestStarted {
                    if byte == 13 || byte == 10 { continue }
                    requestStarted = true
                }
                let expected: UInt8 = matched % 2 == 0 ? 13 : 10
                matched = byte == expected ? matched + 1 : (byte == 13 ? 1 : 0)
                if matched == 4 { headComplete = true; deadline?.cancel(); deadline = nil; break }
            }
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Before its first head, nothing past this handler reacts to a shutdown: close now. After it,
            // Hummingbird's handlers close idle connections; whatever is still open when the grace ends
            // (a request that never completes, a push connection) is closed here, so the relay exits.
            if !headComplete { Self.closeBeforeRequest(context); return }
            if finalClose == nil {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                finalClose = context.eventLoop.scheduleTask(in: Self.shutdownGrace) { bound.value.close(promise: nil) }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !firstResponseSeen {
            firstResponseSeen = true
            upgraded = unwrapOutboundIn(data).readableBytesView.starts(with: "HTTP/1.1 101".utf8)
        }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output, !upgraded, !draining else { return context.close(mode: mode, promise: promise) }
        // The output is closed once pending writes have gone out (a response is never cut short); from
        // then on the input is read and dropped for `linger`, then the connection is closed fully.
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let closed = context.eventLoop.makePromise(of: Void.self)
        closed.futureResult.whenComplete { result in
            if case .success = result { bound.value.handler.startDraining(bound.value.context) }
            promise?.completeWith(result)
        }
        context.close(mode: mode, promise: closed)
    }

    private func startDraining(_ context: ChannelHandlerContext) {
        guard !draining, context.channel.isActive else { return }
        draining = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        finalClose?.cancel()
        finalClose = context.eventLoop.scheduleTask(in: Self.linger) { bound.value.close(promise: nil) }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        finalClose?.cancel()
        finalClose = nil
        uncount()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        finalClose?.cancel()
        uncount()
    }

    private func uncount() {
        if let counted { connections?.close(counted); self.counted = nil }
        if countedInAll { all?.close(); countedInAll = false }
    }
}

/// Open connections per client IP address, capped (a flood from one address cannot use up the relay's
/// file descriptors).
final class ConnectionsPerAddress: Sendable {
    let limit: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    init(limit: Int) { self.limit = limit }

    /// Counts a new connection from `address`, or answers false when that address has `limit` open.
    func open(_ address: String) -> Bool {
        counts.withLockedValue { counts in
            let open = counts[address, default: 0]
            guard open < limit else { return false }
            counts[address] = open + 1
            return true
        }
    }

    func close(_ address: String) {
        counts.withLockedValue { counts in
            let open = counts[address, default: 1] - 1
            counts[address] = open > 0 ? open : nil
        }
    }

    var openCount: Int { counts.withLockedValue { $0.values.reduce(0, +) } }
}

/// Answers a request head the parser refused with a 400 and closes the connection's output;
/// `ConnectionGuard` then drains and closes it fully. Requests that came before the refused one (pipelined
/// in the same write) are answered first: the 400 waits for their responses, at most `answerWait`. NIO's own
/// `HTTPServerProtocolErrorHandler` is not used: it leaves the closing to others, and it would stay in the
/// pipeline after a WebSocket upgrade and take the frames written there for HTTP parts. This one steps
/// aside once it has seen the 101.
final class ParserErrorAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    static let answerWait = TimeAmount.seconds(10)

    private var upgraded = false
    /// Requests whose response has not ended yet.
    private var unanswered = 0
    private var refusing = false
    private var deadline: Scheduled<Void>?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !upgraded, case .head = unwrapInboundIn(data) { unanswered += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var ended = false
        if !upgraded {
            switch unwrapOutboundIn(data) {
            case .head(let head): upgraded = head.status == .switchingProtocols
            case .end: ended = true
            case .body: break
            }
        }
        context.write(data, promise: promise)
        if ended {
            unanswered = max(0, unanswered - 1)
            if refusing, unanswered == 0 { refuse(context) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !upgraded, error is HTTPParserError, !refusing {
            refusing = true
            if unanswered == 0 {
                refuse(context)
            } else {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                deadline = context.eventLoop.scheduleTask(in: Self.answerWait) { bound.value.close(promise: nil) }
            }
        }
        context.fireErrorCaught(error)
    }

    private func refuse(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: ["Connection": "close", "Content-Length": "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(mode: .output, promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }
}
