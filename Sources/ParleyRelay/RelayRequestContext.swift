import Hummingbird
import HummingbirdWebSocket
import NIOCore
import ParleyProtocol

/// Per-request context: the client's address (for per-IP limits) and WebSocket upgrade support.
public struct RelayRequestContext: RequestContext, RemoteAddressRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress
    }

    /// Body limits are enforced per route (see `RelayRoutes.body`); this only caps the framework's buffer.
    public var maxUploadSize: Int { 256 * 1024 * 1024 }

    var clientIP: String { remoteAddress?.ipAddress ?? "unknown" }
}
