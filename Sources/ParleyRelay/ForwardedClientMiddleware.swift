import Hummingbird
import HTTPTypes
import NIOCore

/// Behind a trusted proxy (`--trusted-proxy`), the client is the last address in `X-Forwarded-For`: the
/// one the proxy itself appended (HAProxy's `option forwardfor`); earlier ones came from the client and
/// prove nothing. A request from any other address, or without a well-formed address there, keeps its
/// connection's address.
struct ForwardedClientMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext
    let trustedProxies: Set<String>

    private static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let proxy = context.remoteAddress?.ipAddress, trustedProxies.contains(proxy),
              let header = request.headers[values: Self.forwardedFor].last,
              let last = header.split(separator: ",").last?.trimmingCharacters(in: .whitespaces),
              let client = Self.ipAddress(last) else {
            return try await next(request, context)
        }
        var context = context
        context.forwardedClientIP = client
        return try await next(request, context)
    }

    /// `text` as an IP address literal, in the form the relay prints addresses; nil if it is none.
    static func ipAddress(_ text: String) -> String? {
        guard text.count <= 45, let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        return address.ipAddress
    }
}

extension RelayServer {
    /// `text` as an IP address literal in the relay's spelling (`--trusted-proxy`), nil if it is none.
    public static func ipAddress(_ text: String) -> String? { ForwardedClientMiddleware.ipAddress(text) }
}
