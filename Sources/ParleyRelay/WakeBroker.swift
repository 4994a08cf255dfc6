import ParleyProtocol

/// Wakes connected devices when mail arrives. In one process this is a table of push connections; a
/// PostgreSQL-backed deployment implements the same protocol with LISTEN/NOTIFY so that a message stored
/// by one node wakes a device connected to another.
public protocol WakeBroker: Sendable {
    /// Registers a push connection; a newer one for the same device displaces the older (its `end` runs
    /// with `.displaced`). Once it returns, mail stored from then on wakes the connection: the route's
    /// first `wake` (the device then fetches what is already queued) comes after it.
    func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                   end: @escaping @Sendable (PushEnd) -> Void) async
    func unsubscribe(_ device: DeviceAddress, id: UInt64) async
    func wake(_ devices: [DeviceAddress]) async
    /// Ends the push connections of devices whose tokens were revoked (their `end` runs with `.revoked`):
    /// a device that left the list, or got a new key, must not go on learning when mail arrives.
    func revoke(_ devices: [DeviceAddress]) async
}

/// Why the relay ends a push connection.
public enum PushEnd: Sendable {
    case displaced, revoked
}

/// The single-process broker.
public actor LocalWakeBroker: WakeBroker {
    private struct Subscriber {
        let id: UInt64
        let wake: @Sendable () -> Void
        let end: @Sendable (PushEnd) -> Void
    }
    private var subscribers: [DeviceAddress: Subscriber] = [:]

    public init() {}

    public func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                          end: @escaping @Sendable (PushEnd) -> Void) {
        subscribers[device]?.end(.displaced)
        subscribers[device] = Subscriber(id: id, wake: wake, end: end)
    }

    public func unsubscribe(_ device: DeviceAddress, id: UInt64) {
        if subscribers[device]?.id == id { subscribers[device] = nil }
    }

    public func wake(_ devices: [DeviceAddress]) {
        for device in devices { subscribers[device]?.wake() }
    }

    public func revoke(_ devices: [DeviceAddress]) {
        for device in devices { subscribers.removeValue(forKey: device)?.end(.revoked) }
    }
}
