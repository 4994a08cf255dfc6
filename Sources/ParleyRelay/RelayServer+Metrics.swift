import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `--metrics HOST:PORT`: Prometheus text on `GET /metrics`, on a listener of its own (never the relay's
/// public one), and the sampler that feeds the metrics read from the storage.
extension RelayServer {
    /// The relay's core over `storage`; with metrics, it records them and its storage calls are timed.
    func makeCore(storage: any RelayStorage, broker: any WakeBroker) -> RelayCore {
        guard let metrics else { return RelayCore(configuration: configuration, storage: storage, broker: broker) }
        var core = RelayCore(configuration: configuration, storage: InstrumentedRelayStorage(inner: storage, metrics: metrics.metrics), broker: broker)
        core.metrics = metrics.metrics
        return core
    }

    /// With metrics, their listener, and the sampler when the storage can be sampled.
    func metricsServices(core: RelayCore, logger: Logger) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let metrics else { return [] }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: Self.metricsApplication(metrics, logger: logger))]
        let storage = (core.storage as? InstrumentedRelayStorage)?.inner ?? core.storage
        if let census = storage as? any MetricsCensus {
            services.append(.init(service: MetricsSampler(census: census, metrics: core.metrics, interval: metrics.sampleInterval,
                                                          watermark: configuration.preKeyLowWatermark)))
        } else {
            logger.warning("this storage cannot be sampled: no mailbox depths or devices low on prekeys in the metrics")
        }
        return services
    }

    /// The metrics listener. It has no authentication: it belongs on loopback or a private network.
    static func metricsApplication(_ export: MetricsExport, logger: Logger) -> some Service {
        let router = Router()
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: export.registry.emitToBuffer())))
        }
        return Application(router: router, configuration: .init(address: .hostname(export.host, port: export.port), serverName: "parley-relay"),
                           onServerRunning: { channel in
                               logger.notice("metrics on http://\(export.host):\(channel.localAddress?.port ?? export.port)/metrics")
                           },
                           logger: logger)
    }

    /// Binds the metrics address once and lets it go, as `checkListenAddress` does for the relay's own.
    static func checkMetricsAddress(_ export: MetricsExport) async throws {
        guard export.port != 0 else { return }
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: export.host, port: export.port).get()
            try await channel.close()
        } catch let error as IOError {
            throw RelayStartError.listen("\(export.host):\(export.port) (--metrics)", String(cString: strerror(error.errnoCode)))
        } catch let error as SocketAddressError {
            throw RelayStartError.listen("\(export.host):\(export.port) (--metrics)", "the address cannot be resolved (\(error))")
        }
    }
}

/// Samples what is a state rather than an event: the depth of every non-empty mailbox (into the mailbox
/// depth histogram) and the devices low on one-time prekeys (a gauge), every `interval`, first at start.
struct MetricsSampler: Service {
    let census: any MetricsCensus
    let metrics: RelayMetrics
    let interval: Duration
    let watermark: Int

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                if let depths = try? await census.mailboxDepths() {
                    for depth in depths { metrics.mailboxDepth.record(depth) }
                }
                if let low = try? await census.devicesLowOnPreKeys(watermark: watermark) { metrics.devicesLowOnPreKeys.record(low) }
                try? await Task.sleep(for: interval)
            }
        }
    }
}

/// Counts every response by route template (`/v1/accounts/{address}`, never the path asked
/// for), method and status class. Outermost, so it sees the statuses `ErrorMiddleware` gives errors.
struct ResponseMetricsMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext
    let metrics: RelayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.responded(route: Self.route(context), method: Self.method(request), status: Int(response.status.code))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.responded(route: Self.route(context), method: Self.method(request), status: Int(status))
            throw error
        }
    }

    /// The method, from a fixed set: a client may send any token there.
    private static func method(_ request: Request) -> String {
        let known: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return known.contains(request.method.rawValue) ? request.method.rawValue : "other"
    }

    /// The router's template for the matched route; a path that matched none is "unmatched" (its text is
    /// whatever the client sent, and could name anyone).
    private static func route(_ context: Context) -> String {
        guard let path = context.endpointPath, path.hasPrefix("/") else { return "unmatched" }
        return path
    }
}
