import ParleyCrypto
@testable import ParleyProtocol

/// A test clock that stands still unless told otherwise.
struct FixedClock: WallClock {
    var now: UInt64 = 1_800_000_000_000
    func nowMilliseconds() -> UInt64 { now }
}

/// Bundles served as the relay's directory serves them: each one-time key is handed out once, then the
/// bundle falls back to the signed and last-resort keys.
final class BundleTable: PreKeyBundleSource, @unchecked Sendable {
    private var devices: [DeviceAddress: TestDevice] = [:]
    private var handedOut: Set<UInt32> = []
    private let lock = Lock()
    func register(_ device: TestDevice) { lock.withLock { devices[device.address] = device } }
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        try lock.withLock {
            guard let d = devices[device] else { throw ProtocolError.noSession(address: device.address, deviceId: device.deviceId) }
            let keys = d.store.preKeys()
            let opk = keys.oneTimePreKeys.keys.sorted().first { !handedOut.contains($0) }
            let pq = keys.oneTimePQPreKeys.keys.sorted().first { !handedOut.contains($0) }
            handedOut.formUnion([opk, pq].compactMap { $0 })
            return keys.bundle(identity: d.account.device, oneTimePreKeyId: opk, oneTimePQPreKeyId: pq)
        }
    }
}

/// One device of one account, with its store and session manager, all deterministic under `label`.
struct TestDevice {
    let account: LocalAccount
    let store: InMemorySessionStore
    let manager: SessionManager
    let preKeys: LocalPreKeys
    var address: DeviceAddress { account.deviceAddress }
}

/// Builds accounts with `deviceCount` devices each, all sharing one `BundleTable`.
struct TestWorld {
    let bundles = BundleTable()
    let clock = FixedClock()

    func account(_ name: String, devices deviceCount: Int = 1) -> [TestDevice] {
        let random = DeterministicRandom(label: name)
        let accountKey = Ed25519.KeyPair(random: random)
        let identities = (1...deviceCount).map { DeviceIdentity(deviceId: UInt32($0), keyPair: Ed25519.KeyPair(random: random)) }
        let list = SignedDeviceList.sign(
            devices: identities.map { DeviceEntry(deviceId: $0.deviceId, identityKey: $0.publicKey, createdAt: 1_700_000_000_000) },
            version: 1, accountKey: accountKey)
        return identities.map { identity in
            let account = LocalAccount(address: name, accountKey: accountKey, device: identity, deviceList: list,
                                       certificateExpiry: clock.now + 86_400_000)
            let preKeys = LocalPreKeys.generate(oneTime: 3, random: random)
            let store = InMemorySessionStore(preKeys: preKeys)
            let manager = SessionManager(account: account, store: store, bundles: bundles, clock: clock, random: random)
            let device = TestDevice(account: account, store: store, manager: manager, preKeys: preKeys)
            bundles.register(device)
            return device
        }
    }

    /// Makes each side know the other's account key and device list, as adding a contact does.
    func introduce(_ a: [TestDevice], _ b: [TestDevice]) {
        for x in a { x.store.setAccount(KnownAccount(accountKey: b[0].account.accountKey.publicKey, deviceList: b[0].account.deviceList),
                                        for: b[0].account.address) }
        for y in b { y.store.setAccount(KnownAccount(accountKey: a[0].account.accountKey.publicKey, deviceList: a[0].account.deviceList),
                                        for: a[0].account.address) }
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}
