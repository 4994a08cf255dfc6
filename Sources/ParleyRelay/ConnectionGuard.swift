import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What the HTTP server does not bound by itself before a connection has sent its first request head:
/// Hummingbird adds its idle timeout and its reaction to a graceful shutdown only once that head has been
/// parsed, so a client that connects and sends nothing (or half a head) held a descriptor for ever and
/// kept the relay running after SIGTERM. `ConnectionGuard` sits in front of the HTTP handlers (behind
/// TLS) and closes such a connection when the first head is not complete within `headDeadline`, or when
/// a graceful shutdown begins; it also caps open connections per client address. And when the server
/// half-closes a connection (an answer with "Connection: close", such as a 413 before the body was read)
/// it closes it fully a little later: the server no longer reads, so a client still writing the body
/// would otherwise block until its own timeout.
struct GuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let headDeadline: TimeAmount
    let connections: ConnectionsPerAddress?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuard(headDeadline: headDeadline, connections: connections))
        }.flatMap { inner.setup(channel: channel, logger: logger) }
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
    /// How long a half-closed connection may linger (a WebSocket close handshake finishes well within it).
    static let linger = TimeAmount.seconds(2)

    private let headDeadline: TimeAmount
    private let connections: ConnectionsPerAddress?
    private var counted: String?
    private var deadline: Scheduled<Void>?
    private var lingering: Scheduled<Void>?
    private var headComplete = false
    /// How many bytes of "\r\n\r\n" (the end of a request head) the bytes so far end with.
    private var matched = 0

    init(headDeadline: TimeAmount, connections: ConnectionsPerAddress?) {
        self.headDeadline = headDeadline
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard deadline == nil, !headComplete else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
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
        if !headComplete {
            let bytes = unwrapInboundIn(data)
            for byte in bytes.readableBytesView {
                let expected: UInt8 = matched % 2 == 0 ? 13 : 10
                matched = byte == expected ? matched + 1 : (byte == 13 ? 1 : 0)
                if matched == 4 { headComplete = true; deadline?.cancel(); deadline = nil; break }
            }
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Past the first head, Hummingbird's own handlers close idle connections on a graceful shutdown.
        if event is ChannelShouldQuiesceEvent, !headComplete { Self.closeBeforeRequest(context); return }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output, lingering == nil {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            lingering = context.eventLoop.scheduleTask(in: Self.linger) { bound.value.close(mode: .all, promise: nil) }
        }
        context.close(mode: mode, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        lingering?.cancel()
        lingering = nil
        if let counted { connections?.close(counted); self.counted = nil }
        context.fireChannelInactive()
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
