import Hummingbird
import HummingbirdWebSocket
import NIOConcurrencyHelpers
import NIOCore
import ParleyProtocol

/// Per-request context: the client's address (for per-IP limits) and WebSocket upgrade support.
public struct RelayRequestContext: RequestContext, RemoteAddressRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    private let webSocketSlot = WebSocketSlot()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// Where the WebSocket route leaves its handler for the upgrade. HummingbirdWebSocket stores the
    /// handler together with a copy of this context in the reference's box, and the context holds the
    /// reference: a cycle that kept every accepted push connection's context, about a kilobyte, for
    /// ever. The push handler calls `releaseWebSocketReference` once the upgrade is done, which breaks it.
    public var webSocket: WebSocketHandlerReference<Self> { webSocketSlot.reference ?? WebSocketHandlerReference() }

    /// Drops this context's hold on its WebSocket reference (see `webSocket`).
    func releaseWebSocketReference() { webSocketSlot.reference = nil }

    /// Body limits are enforced per route (see `RelayRoutes.body`); this only caps the framework's buffer.
    public var maxUploadSize: Int { 256 * 1024 * 1024 }

    /// The client's address as a trusted proxy forwarded it (`ForwardedClientMiddleware`).
    var forwardedClientIP: String?

    var clientIP: String { forwardedClientIP ?? remoteAddress?.ipAddress ?? "unknown" }
}

/// The context's WebSocket reference, behind a class so that every copy of the context shares it and
/// one call can let it go.
private final class WebSocketSlot: @unchecked Sendable {
    private let lock = NIOLock()
    private var _reference: WebSocketHandlerReference<RelayRequestContext>? = WebSocketHandlerReference()
    var reference: WebSocketHandlerReference<RelayRequestContext>? {
        get { lock.withLock { _reference } }
        set { lock.withLock { _reference = newValue } }
    }
}
