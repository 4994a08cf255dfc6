import Logging
import ParleyProtocol
import PostgresNIO

/// Wake-ups across relay nodes that share one PostgreSQL database: `wake` and `revoke` are NOTIFYs on one
/// channel, and every node LISTENs on it and acts on the push connections it holds (its own NOTIFYs come
/// back to it too, so there is one path for all). A notification carries only an opaque device key (a
/// hash of the device's address: nothing about the sender, the message or, to someone reading the
/// channel, the account: a `WakeKey`) and one letter for what to do.
///
/// While the listening connection is down (the database restarting) notifications are lost; once it is
/// back every push connection of this node is woken, and its device fetches whatever arrived meanwhile.
/// A newer push connection of a device displaces an older one on the same node only: a device connected
/// to two nodes at once is woken on both.
public actor PostgresWakeBroker: WakeBroker {
    static let channel = "parley_wake"

    private struct Subscriber {
        let device: DeviceAddress
        let id: UInt64
        let wake: @Sendable () -> Void
        let end: @Sendable (PushEnd) -> Void
    }
    private var subscribers: [WakeKey: Subscriber] = [:]
    private let client: PostgresClient
    private let logger: Logger
    private var listener: Task<Void, Never>?
    private var listening = false
    private var listeningWaiters: [CheckedContinuation<Void, Never>] = []

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Starts listening; returns once the first LISTEN is in place (or the task is cancelled).
    public func start() async {
        guard listener == nil else { return }
        listener = Task { await self.listen() }
        await untilListening()
    }

    public func stop() {
        listener?.cancel()
        listener = nil
    }

    private func untilListening() async {
        if listening { return }
        await withCheckedContinuation { listeningWaiters.append($0) }
    }

    // MARK: WakeBroker

    public func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                          end: @escaping @Sendable (PushEnd) -> Void) {
        let key = WakeKey(device)
        subscribers[key]?.end(.displaced)
        subscribers[key] = Subscriber(device: device, id: id, wake: wake, end: end)
    }

    public func unsubscribe(_ device: DeviceAddress, id: UInt64) {
        let key = WakeKey(device)
        if subscribers[key]?.id == id { subscribers[key] = nil }
    }

    public func wake(_ devices: [DeviceAddress]) async {
        await notify("w", devices)
    }

    /// Ends the device's push connection here at once, and on every other node through the channel.
    public func revoke(_ devices: [DeviceAddress]) async {
        for device in devices { subscribers.removeValue(forKey: WakeKey(device))?.end(.revoked) }
        await notify("r", devices)
    }

    private func notify(_ action: String, _ devices: [DeviceAddress]) async {
        let payloads = Array(Set(devices.map { action + WakeKey($0).hex }))
        guard !payloads.isEmpty else { return }
        do {
            try await client.query("SELECT pg_notify(\(Self.channel), p) FROM unnest(\(payloads)::text[]) AS p", logger: logger)
        } catch {
            // The envelope is stored; without the channel at least this node's own connection is woken.
            logger.warning("wake-ups: cannot notify other nodes (\(String(describing: error).prefix(200)))")
            for payload in payloads { deliver(payload) }
        }
    }

    private func deliver(_ payload: String) {
        guard let action = payload.first, let key = WakeKey(hex: payload.dropFirst()) else { return }
        switch action {
        case "w": subscribers[key]?.wake()
        case "r": subscribers.removeValue(forKey: key)?.end(.revoked)
        default: break
        }
    }

    private func listened(again: Bool) {
        listening = true
        for waiter in listeningWaiters { waiter.resume() }
        listeningWaiters = []
        // Notifications sent while this node was not listening are lost: every device here looks.
        if again { for subscriber in subscribers.values { subscriber.wake() } }
    }

    private func lost() { listening = false }

    /// Holds one connection of the pool in LISTEN for as long as the broker runs, and takes another when
    /// it breaks.
    private nonisolated func listen() async {
        var first = true
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        await self.listened(again: !first)
                        first = false
                        for try await notification in notifications { await self.deliver(notification.payload) }
                    }
                }
            } catch {
                if !Task.isCancelled { logger.warning("wake-ups: listening connection lost (\(String(describing: error).prefix(200))); retrying") }
            }
            await lost()
            try? await Task.sleep(for: .milliseconds(250))
        }
        await listened(again: false)   // nobody waits for a broker that stopped
    }
}
