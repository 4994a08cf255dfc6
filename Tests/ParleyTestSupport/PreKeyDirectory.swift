import ParleyCrypto
import ParleyProtocol

/// Bundles served as the relay's directory serves them, from each device's own prekeys: each one-time key
/// is handed out once, then the bundle falls back to the signed and last-resort keys.
public final class PreKeyDirectory: PreKeyBundleSource, @unchecked Sendable {
    private var devices: [DeviceAddress: (identity: DeviceIdentity, preKeys: @Sendable () throws -> LocalPreKeys)] = [:]
    private var handedOut: [DeviceAddress: Set<UInt32>] = [:]
    private let lock = Lock()

    public init() {}

    /// Serves `device`'s bundles from `preKeys` (read at each fetch: a device's store may change them).
    public func register(_ device: DeviceAddress, identity: DeviceIdentity, preKeys: @escaping @Sendable () throws -> LocalPreKeys) {
        lock.withLock {
            devices[device] = (identity, preKeys)
            handedOut[device] = []
        }
    }

    public func forget(_ device: DeviceAddress) {
        lock.withLock { devices[device] = nil }
    }

    public func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        try lock.withLock {
            guard let (identity, preKeys) = devices[device] else {
                throw ProtocolError.noSession(address: device.address, deviceId: device.deviceId)
            }
            let keys = try preKeys()
            let used = handedOut[device, default: []]
            let opk = keys.oneTimePreKeys.keys.sorted().first { !used.contains($0) }
            let pq = keys.oneTimePQPreKeys.keys.sorted().first { !used.contains($0) }
            handedOut[device] = used.union([opk, pq].compactMap { $0 })
            return keys.bundle(identity: identity, oneTimePreKeyId: opk, oneTimePQPreKeyId: pq)
        }
    }
}
