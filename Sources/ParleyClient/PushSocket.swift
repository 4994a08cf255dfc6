import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// The push WebSocket as a client, on swift-nio directly. A relay addressed by an IP address gets no TLS
/// server name (`ConnectTarget.serverName`) and its certificate is checked against the IP address, which
/// the WebSocket client libraries at hand could not do (they always sent the host as the name).
enum PushSocket {
    enum Failure: Error, CustomStringConvertible {
        case badURL(String)
        case refused
        var description: String {
            switch self {
            case .badURL(let url): "not a push URL: \(url)"
            case .refused: "the relay refused the WebSocket upgrade"
            }
        }
    }

    /// How long connecting, and then the upgrade, may take.
    static let upgradeTimeout = TimeAmount.seconds(15)

    private enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    /// Connects to `url` (ws:// or wss://), upgrades with the given Authorization header, and hands every
    /// text message to `onText` until the relay closes the connection. Answers pings, and the relay's close.
    static func run(url: String, authorization: String, tls: TLSConfiguration?, timeout: TimeAmount = upgradeTimeout,
                    onText: @escaping @Sendable (String) async -> Void) async throws {
        guard let target = ConnectTarget(url: url), url.hasPrefix("ws") else { throw Failure.badURL(url) }
        let context = target.secure ? try NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil

        // Cancelling the task closes the channel, also while it connects or upgrades (waits NIO does not
        // cancel by itself), so the listener stops at once rather than after the timeout.
        let opened = OpenedChannel()
        try await withTaskCancellationHandler {
            try await exchange(host: target.host, port: target.port, path: target.path, authority: target.authority,
                               authorization: authorization, context: context, sni: target.serverName, timeout: timeout,
                               opened: opened, onText: onText)
        } onCancel: {
            opened.cancel()
        }
    }

    private static func exchange(host: String, port: Int, path: String, authority: String, authorization: String,
                                 context: NIOSSLContext?, sni: String?, timeout: TimeAmount, opened: OpenedChannel,
                                 onText: @escaping @Sendable (String) async -> Void) async throws {
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .connect(host: host, port: port) { channel in
                opened.set(channel)
                return channel.eventLoop.makeCompletedFuture {
                    if let context {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: sni)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: 1 << 14) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(NIOWebSocketFrameAggregator(
                                minNonFinalFragmentSize: 0, maxAccumulatedFrameCount: 16, maxAccumulatedFrameSize: 1 << 14))
                            return .websocket(try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel))
                        }
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: authority)
                    headers.add(name: "Authorization", value: authorization)
                    headers.add(name: "Content-Length", value: "0")
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: head, upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { .refused } })
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    // The relay writes its first `wake` right behind the 101 response, often in the same
                    // read: those bytes belong to the WebSocket decoder and must not be dropped.
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    let upgraded = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    // A relay that accepts the connection but never answers the upgrade must not hold the
                    // listener forever: it reconnects instead.
                    let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                    upgraded.whenComplete { _ in deadline.cancel() }
                    return upgraded
                }
            }
        guard case .websocket(let socket) = try await upgrade.get() else { throw Failure.refused }
        try await socket.executeThenClose { inbound, outbound in
            for try await frame in inbound {
                switch frame.opcode {
                case .text:
                    await onText(String(buffer: frame.unmaskedData))
                case .ping:
                    try await outbound.write(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData))
                case .connectionClose:
                    // Echo the close (its status code, if any) and stop.
                    var data = frame.unmaskedData
                    let code = data.readSlice(length: min(2, data.readableBytes)) ?? ByteBuffer()
                    try? await outbound.write(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: code))
                    return
                default:
                    continue   // binary and pong frames carry nothing for Parley
                }
            }
        }
    }
}
