import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import ParleyProtocol
import ServiceLifecycle

/// Builds and runs the relay: HTTP API, push WebSocket, optional TLS, and a sweeper that drops expired
/// messages and attachments.
public struct RelayServer: Sendable {
    public let configuration: RelayConfiguration

    public init(configuration: RelayConfiguration) {
        self.configuration = configuration
    }

    /// Runs until SIGINT/SIGTERM (or until the task is cancelled). `onListening` gets the bound port (useful
    /// with port 0).
    public func run(logger: Logger = Logger(label: "parley-relay"), onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let storage = try SQLiteRelayStorage(path: configuration.dataDirectory + "/relay.sqlite")
        let core = RelayCore(configuration: configuration, storage: storage, broker: LocalWakeBroker())
        let attachments = try AttachmentFiles(core: core)
        let routes = RelayRoutes(core: core, ipLimiter: RateLimiter(configuration.ipRate),
                                 accountLimiter: RateLimiter(configuration.accountRate), attachments: attachments)
        let router = Router(context: RelayRequestContext.self)
        routes.register(on: router)
        let webSocketRouter = Router(context: RelayRequestContext.self)
        webSocketRouter.middlewares.add(ErrorMiddleware())
        routes.registerPush(on: webSocketRouter, connectionIds: ConnectionCounter())

        var server: HTTPServerBuilder = .http1WebSocketUpgrade(webSocketRouter: webSocketRouter)
        if let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            server = try .tls(server, tlsConfiguration: tls)
        }
        let app = Application(
            router: router, server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "parley-relay"),
            services: [Sweeper(core: core, attachments: attachments)],
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        // A graceful shutdown waits for open connections; one that never finishes (a client that keeps a
        // push connection open through the close) must not keep the relay running: after a few seconds the
        // group cancels what is left. Everything stored is committed already, so nothing is lost.
        var group = ServiceGroupConfiguration(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }
}

/// Purges expired messages, tokens, challenges and attachments once a minute.
struct Sweeper: Service {
    let core: RelayCore
    let attachments: AttachmentFiles

    func run() async throws {
        // SIGTERM/SIGINT start a graceful shutdown, which waits for every service to return: without this
        // the sweeper never did, and the relay ignored both signals.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let now = core.clock.nowMilliseconds()
                _ = try? await core.storage.purgeExpired(now: now)
                try? await attachments.purgeExpired()
                try? await Task.sleep(for: .seconds(60))
            }
        }
    }
}
