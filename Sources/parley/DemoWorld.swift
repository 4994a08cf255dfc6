import ParleyCrypto
import ParleyProtocol

/// One device of an in-memory demo account.
struct DemoDevice {
    let account: LocalAccount
    let store: InMemorySessionStore
    let manager: SessionManager
    var address: DeviceAddress { account.deviceAddress }
}

/// In-memory accounts and a prekey directory that hands out each one-time key once, as a relay does.
final class DemoWorld: PreKeyBundleSource, @unchecked Sendable {
    private var devices: [DeviceAddress: DemoDevice] = [:]
    private var handedOut: Set<DeviceAddress> = []
    private let lock = Lock()

    func account(_ address: String, devices count: Int) -> [DemoDevice] {
        let now = SystemWallClock().nowMilliseconds()
        let accountKey = Ed25519.KeyPair()
        let identities = (1...count).map { DeviceIdentity(deviceId: UInt32($0), keyPair: Ed25519.KeyPair()) }
        let list = SignedDeviceList.sign(
            devices: identities.map { DeviceEntry(deviceId: $0.deviceId, identityKey: $0.publicKey, createdAt: now) },
            version: 1, accountKey: accountKey)
        return identities.map { identity in
            let account = LocalAccount(address: address, accountKey: accountKey, device: identity, deviceList: list,
                                       certificateExpiry: now + 86_400_000)
            let store = InMemorySessionStore(preKeys: .generate(oneTime: 1))
            let device = DemoDevice(account: account, store: store, manager: SessionManager(account: account, store: store, bundles: self))
            lock.withLock { devices[device.address] = device }
            return device
        }
    }

    func introduce(_ a: [DemoDevice], _ b: [DemoDevice]) throws {
        for (mine, theirs) in [(a, b), (b, a)] {
            let known = KnownAccount(accountKey: theirs[0].account.accountKey.publicKey, deviceList: theirs[0].account.deviceList)
            let address = try AccountAddress(theirs[0].account.address)
            for device in mine { device.store.setAccount(known, for: address) }
        }
    }

    func bundle(for address: DeviceAddress) async throws -> PreKeyBundle {
        try lock.withLock {
            guard let device = devices[address] else { throw ProtocolError.unknownDevice(address: address.address, deviceId: address.deviceId) }
            let keys = device.store.preKeys()
            let first = handedOut.insert(address).inserted
            return keys.bundle(identity: device.account.device,
                               oneTimePreKeyId: first ? keys.oneTimePreKeys.keys.first : nil,
                               oneTimePQPreKeyId: first ? keys.oneTimePQPreKeys.keys.first : nil)
        }
    }
}
