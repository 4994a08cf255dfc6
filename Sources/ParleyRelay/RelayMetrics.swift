import CoreMetrics
import Foundation
import Metrics
import NIOConcurrencyHelpers

/// What the relay counts for its operators (`parley-relay serve --metrics`, parley-relay(8)). Every label
/// value is a fixed word of the relay's own (an operation, a limiter, a route template, a status class):
/// none names an account, a device, a token or a client address, and no value is one either.
///
/// The metrics are made from the factory given here, not from the process-wide `MetricsSystem`: tests run
/// several relays in one process, each with a registry of its own. Without a factory nothing is recorded.
public struct RelayMetrics: Sendable {
    let factory: any MetricsFactory
    let enabled: Bool

    let envelopesStored: Counter
    let envelopesDelivered: Counter
    let envelopesExpired: Counter
    /// Queued envelopes per non-empty mailbox, sampled every `MetricsExport.sampleInterval`.
    let mailboxDepth: Recorder
    let devicesLowOnPreKeys: Gauge
    let pushConnections: Meter
    let registrations: Counter
    let deviceListChanges: Counter
    let devicesAdded: Counter
    let devicesRemoved: Counter
    private let bundlesWithoutOneTimeKey: [String: Counter]
    private let refusals = NIOLockedValueBox<[String: Counter]>([:])
    private let responses = NIOLockedValueBox<[ResponseKey: Counter]>([:])
    private let storageTimers = NIOLockedValueBox<[String: Metrics.Timer]>([:])

    /// Nothing recorded.
    public static let disabled = RelayMetrics(factory: NOOPMetricsHandler.instance, enabled: false)

    public init(factory: any MetricsFactory) { self.init(factory: factory, enabled: true) }

    private init(factory: any MetricsFactory, enabled: Bool) {
        self.factory = factory
        self.enabled = enabled
        envelopesStored = Counter(label: "parley_relay_envelopes_stored_total", factory: factory)
        envelopesDelivered = Counter(label: "parley_relay_envelopes_delivered_total", factory: factory)
        envelopesExpired = Counter(label: "parley_relay_envelopes_expired_total", factory: factory)
        mailboxDepth = Recorder(label: Self.mailboxDepthLabel, aggregate: true, factory: factory)
        devicesLowOnPreKeys = Gauge(label: "parley_relay_devices_low_on_prekeys", factory: factory)
        pushConnections = Meter(label: "parley_relay_push_connections", factory: factory)
        registrations = Counter(label: "parley_relay_registrations_total", factory: factory)
        deviceListChanges = Counter(label: "parley_relay_device_list_changes_total", factory: factory)
        devicesAdded = Counter(label: "parley_relay_devices_added_total", factory: factory)
        devicesRemoved = Counter(label: "parley_relay_devices_removed_total", factory: factory)
        bundlesWithoutOneTimeKey = Dictionary(uniqueKeysWithValues: ["ec", "pq"].map { kind in
            (kind, Counter(label: "parley_relay_prekey_bundles_without_one_time_key_total", dimensions: [("kind", kind)], factory: factory))
        })
    }

    static let mailboxDepthLabel = "parley_relay_mailbox_depth"
    static let storageLatencyLabel = "parley_relay_storage_seconds"

    /// A bundle handed out with one-time prekeys asked for: a kind missing means the device's stock had run out.
    func bundleTaken(oneTime: Bool, oneTimePQ: Bool) {
        if !oneTime { bundlesWithoutOneTimeKey["ec"]?.increment() }
        if !oneTimePQ { bundlesWithoutOneTimeKey["pq"]?.increment() }
    }

    /// A new device list: one change, with the devices it adds (new ids, or new keys under old ids) and the
    /// ones it removes (or re-keys).
    func deviceListChanged(added: Int, removed: Int) {
        deviceListChanges.increment()
        devicesAdded.increment(by: added)
        devicesRemoved.increment(by: removed)
    }

    /// A request refused by the rate limiter named `limiter` (a fixed name, never its key).
    func refused(by limiter: String) {
        guard enabled else { return }
        refusals.withLockedValue { counters in
            if let counter = counters[limiter] { return counter }
            let counter = Counter(label: "parley_relay_rate_limited_total", dimensions: [("limiter", limiter)], factory: factory)
            counters[limiter] = counter
            return counter
        }.increment()
    }

    struct ResponseKey: Hashable {
        let route: String
        let method: String
        let statusClass: String
    }

    /// A response of `status` on the route template `route` (as registered, `/v1/accounts/{address}`).
    func responded(route: String, method: String, status: Int) {
        guard enabled else { return }
        let key = ResponseKey(route: route, method: method, statusClass: "\(min(max(status / 100, 1), 5))xx")
        responses.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "parley_relay_responses_total",
                                  dimensions: [("route", key.route), ("method", key.method), ("class", key.statusClass)], factory: factory)
            counters[key] = counter
            return counter
        }.increment()
    }

    /// How long one storage call took (`operation`: the storage method's name).
    func storageTimer(_ operation: String) -> Metrics.Timer {
        storageTimers.withLockedValue { timers in
            if let timer = timers[operation] { return timer }
            let timer = Metrics.Timer(label: Self.storageLatencyLabel, dimensions: [("operation", operation)], factory: factory)
            timers[operation] = timer
            return timer
        }
    }
}
