import CHeap
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import ParleyCrypto
import ParleyProtocol
import ServiceLifecycle

/// Builds and runs the relay: HTTP API, push WebSocket, optional TLS, and a sweeper that drops expired
/// messages and attachments.
public struct RelayServer: Sendable {
    public let configuration: RelayConfiguration
    /// Where and into what the metrics go (`--metrics`); nil records none.
    public let metrics: MetricsExport?

    public init(configuration: RelayConfiguration, metrics: MetricsExport? = nil) {
        self.configuration = configuration
        self.metrics = metrics
    }

    /// Runs until SIGINT/SIGTERM (or until the task is cancelled). `onListening` gets the bound port (useful
    /// with port 0).
    /// A relay that fails to start (a port in use, an unusable certificate) leaves nothing behind: a data
    /// directory this start created goes again, so the next try starts as clean as the first.
    public func run(logger: Logger = Logger(label: "parley-relay"), onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        // What can be checked before the data directory is touched is checked first.
        let tls = try Self.loadTLS(configuration)
        try await Self.checkListenAddress(configuration)
        if let metrics { try await Self.checkMetricsAddress(metrics) }
        let created = try Self.prepare(dataDirectory: configuration.dataDirectory)
        let listened = OnceFlag()    // from then on a failure is not a failed start, and the data stays
        do {
            try await serve(tls: tls, logger: logger) { port in
                listened.setIfUnset()
                await onListening(port)
            }
        } catch {
            if !listened.isSet, let created { try? FileManager.default.removeItem(atPath: created) }
            throw error
        }
    }

    private func serve(tls: TLSConfiguration?, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void) async throws {
        if let database = configuration.database {
            let location: PostgresLocation
            do { location = try PostgresLocation(url: database) } catch { throw RelayStartError.database(error.description) }
            // Its sends wake recipients on the channels of the nodes holding them (the brokers', made below) as they commit.
            let storage = PostgresRelayStorage(location: location, wakingRecipients: true, logger: logger)
            defer { storage.close() }
            do {
                try await storage.checkConnection()
                try await storage.migrate()
            } catch let error as PostgresSchemaError {
                throw RelayStartError.database("\(location.redacted): \(error)")
            } catch {
                throw RelayStartError.database("cannot use \(location.redacted): \(PostgresRelayStorage.describe(error).prefix(300))")
            }
            let broker = PostgresWakeBroker(client: storage.client, logger: logger)
            await broker.start()
            logger.info("storage: PostgreSQL at \(location.redacted), schema version \(PostgresRelayStorage.schemaVersion)")
            do {
                try await serve(core: makeCore(storage: storage, broker: broker), tls: tls, logger: logger, onListening: onListening)
            } catch {
                await broker.stop()
                throw error
            }
            await broker.stop()
            return
        }
        let storage: SQLiteRelayStorage
        do { storage = try SQLiteRelayStorage(path: configuration.dataDirectory + "/relay.sqlite") } catch {
            throw RelayStartError.dataDirectory(configuration.dataDirectory, "cannot open relay.sqlite in it (\(error))")
        }
        try await serve(core: makeCore(storage: storage, broker: LocalWakeBroker()), tls: tls, logger: logger, onListening: onListening)
    }

    private func serve(core: RelayCore, tls: TLSConfiguration?, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void) async throws {
        let attachments: AttachmentFiles
        do { attachments = try AttachmentFiles(core: core) } catch {
            throw RelayStartError.dataDirectory(configuration.dataDirectory, "cannot use its attachments directory (\(error))")
        }
        let routes = RelayRoutes(core: core, ipLimiter: RateLimiter(configuration.ipRate),
                                 accountLimiter: RateLimiter(configuration.accountRate),
                                 strangerLimiter: RateLimiter(configuration.strangerRate), attachments: attachments,
                                 bundleLimits: BundleLimits(perDevice: configuration.bundleRatePerDevice, perIP: configuration.bundleRatePerIP))
        let router = Router(context: RelayRequestContext.self)
        if metrics != nil { router.middlewares.add(ResponseMetricsMiddleware(metrics: core.metrics)) }
        if !configuration.trustedProxies.isEmpty { router.middlewares.add(ForwardedClientMiddleware(trustedProxies: configuration.trustedProxies)) }
        routes.register(on: router)
        let webSocketRouter = Router(context: RelayRequestContext.self)
        if metrics != nil { webSocketRouter.middlewares.add(ResponseMetricsMiddleware(metrics: core.metrics)) }
        webSocketRouter.middlewares.add(ErrorMiddleware(space: core.space))
        routes.registerPush(on: webSocketRouter, connectionIds: ConnectionCounter())

        let webSocketResponder = webSocketRouter.buildResponder()
        let http1 = HTTP1Channel.Configuration(idleTimeout: .seconds(configuration.idleSeconds))
        let connections = configuration.maxConnectionsPerAddress.map(ConnectionsPerAddress.init(limit:))
        let all = configuration.maxConnections.map { OpenConnections(limit: $0, logger: logger) }
        let headDeadline = TimeAmount.seconds(configuration.requestHeadSeconds)
        var server = HTTPServerBuilder { responder in
            GuardedChannel(inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder,
                                                               configuration: .init(http1: http1)),
                           headDeadline: headDeadline, connections: connections, all: all)
        }
        if let tls {
            do { server = try .tls(server, tlsConfiguration: tls) } catch {
                throw RelayStartError.tls(configuration.tlsCertificatePath ?? "", "the certificate and key cannot be used together (\(error))")
            }
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
        var group = ServiceGroupConfiguration(services: [.init(service: app)] + metricsServices(core: core, logger: logger), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(5)
        try await Self.mappingListenErrors(configuration) { try await ServiceGroup(configuration: group).run() }
    }

    /// Creates the data directory if needed and checks that the relay can write in it, so that a wrong
    /// --data is one clear line rather than a file-system error from deep inside. Returns the outermost
    /// directory it created, if it created any.
    static func prepare(dataDirectory path: String) throws(RelayStartError) -> String? {
        var isDirectory: ObjCBool = false
        var created: String?
        /// The failure in words (with errno's), once what this call created is gone again.
        func failure(_ what: String) -> RelayStartError {
            let why = String(cString: strerror(errno))
            if let created { try? FileManager.default.removeItem(atPath: created) }
            return .dataDirectory(path, "\(what): \(why)")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw .dataDirectory(path, "it is not a directory") }
        } else {
            created = outermostMissing(path)
            guard mkdirs(path) == 0 else { throw failure("cannot create it") }
        }
        guard access(path, R_OK | W_OK | X_OK) == 0 else { throw failure("cannot write in it") }
        return created
    }

    /// The first directory on the way down to `path` that does not exist (`path` itself if only it is missing).
    private static func outermostMissing(_ path: String) -> String {
        var missing = path
        var parent = (path as NSString).deletingLastPathComponent
        while !parent.isEmpty, parent != missing, !FileManager.default.fileExists(atPath: parent) {
            missing = parent
            parent = (parent as NSString).deletingLastPathComponent
        }
        return missing
    }

    /// mkdir -p; the data directory itself mode 0700 (it holds public keys and ciphertext only, but nobody
    /// else needs to list it).
    private static func mkdirs(_ path: String, mode: mode_t = 0o700) -> Int32 {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, !FileManager.default.fileExists(atPath: parent), mkdirs(parent, mode: 0o755) != 0 { return -1 }
        return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1
    }
}

/// Why the relay could not start, in words for the operator (parley-relay exits 3).
public enum RelayStartError: Error, CustomStringConvertible {
    case dataDirectory(String, String)
    case tls(String, String)
    case listen(String, String)
    /// The PostgreSQL database of --database cannot be used (unreachable, refused, a newer schema).
    case database(String)

    public var description: String {
        switch self {
        case .dataDirectory(let path, let why): "cannot use the data directory \(path): \(why)"
        case .tls(let path, let why): "cannot use \(path): \(why)"
        case .listen(let address, let why): "cannot listen on \(address): \(why)"
        case .database(let why): "cannot use the database: \(why)"
        }
    }
}

/// Purges expired messages, tokens, challenges and attachments once a minute, and hands the heap memory
/// glibc keeps after frees back to the system: after a wave of push connections comes and goes, the
/// relay's memory then follows what it holds rather than its busiest moment.
struct Sweeper: Service {
    let core: RelayCore
    let attachments: AttachmentFiles

    func run() async throws {
        // SIGTERM/SIGINT start a graceful shutdown, which waits for every service to return: without this
        // the sweeper never did, and the relay ignored both signals.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let now = core.clock.nowMilliseconds()
                if let purged = try? await core.storage.purgeExpired(now: now) { core.metrics.envelopesExpired.increment(by: purged) }
                try? await attachments.purgeExpired()
                parley_release_free_memory()
                try? await Task.sleep(for: .seconds(60))
            }
        }
    }
}
