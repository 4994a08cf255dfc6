import ParleyProtocol

/// Wakes connected devices when mail arrives. In one process this is a table of push connections; a
/// PostgreSQL-backed deployment implements the same protocol with LISTEN/NOTIFY so that a message stored
/// by one node wakes a device connected to another.
public protocol WakeBroker: Sendable {
    /// Registers a push connection; a newer one for the same device displaces the older (`displaced` runs).
    func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                   displaced: @escaping @Sendable () -> Void) async
    func unsubscribe(_ device: DeviceAddress, id: UInt64) async
    func wake(_ devices: [DeviceAddress]) async
}

/// The single-process broker.
public actor LocalWakeBroker: WakeBroker {
    private struct Subscriber {
        let id: UInt64
        let wake: @Sendable () -> Void
        let displaced: @Sendable () -> Void
    }
    private var subscribers: [DeviceAddress: Subscriber] = [:]

    public init() {}

    public func subscribe(_ device: DeviceAddress, id: UInt64, wake: @escaping @Sendable () -> Void,
                          displaced: @escaping @Sendable () -> Void) {
        subscribers[device]?.displaced()
        subscribers[device] = Subscriber(id: id, wake: wake, displaced: displaced)
    }

    public func unsubscribe(_ device: DeviceAddress, id: UInt64) {
        if subscribers[device]?.id == id { subscribers[device] = nil }
    }

    public func wake(_ devices: [DeviceAddress]) {
        for device in devices { subscribers[device]?.wake() }
    }
}
