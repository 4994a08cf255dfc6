import Prometheus

/// The Prometheus side: one registry, the factory that fills it, and where it is served.
public struct MetricsExport: Sendable {
    public let host: String
    public let port: Int
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    /// How often the mailbox depths and the devices low on prekeys are sampled from the storage.
    public var sampleInterval: Duration = .seconds(60)

    public init(host: String, port: Int, registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.host = host
        self.port = port
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        // Mailbox depths from one message to the default limit of 10,000; storage calls from a tenth of a
        // millisecond (an indexed read) to seconds (a writer waiting behind a slow disk).
        factory.valueHistogramBuckets[RelayMetrics.mailboxDepthLabel] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]
        factory.durationHistogramBuckets[RelayMetrics.storageLatencyLabel] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        self.factory = factory
        metrics = RelayMetrics(factory: factory)
    }

    /// The relay's metrics, recorded into `registry`.
    public let metrics: RelayMetrics
}
