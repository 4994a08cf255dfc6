import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// What `parley rotate-keys` changed.
public struct KeyRotation: Sendable, Equatable {
    public let deviceId: UInt32
    /// This device's identity key before and after (equal when only the account key changed).
    public let oldDeviceKey: [UInt8]
    public let newDeviceKey: [UInt8]
    /// The account key before and after (equal when only the device key changed).
    public let oldAccountKey: [UInt8]
    public let newAccountKey: [UInt8]
    /// Other devices of the account that left it with a new account key (they must be linked again).
    public let removedDevices: [UInt32]
}

/// Incident response (PROTOCOL.md §3.5): a new identity key for this device, or a new account key.
///
/// Both follow one order, so that an interruption never locks the device out: the mailbox is drained and
/// the outbox emptied (both belong to the old keys); the new keys, the re-signed list and fresh prekeys
/// are stored, with every ratchet session deleted, in one transaction; only then is the list published.
/// A publication that did not happen is finished by the next sign-in (`finishInterruptedRotation`).
extension Engine {
    /// A new identity key and fresh prekeys for this device; the device list, re-signed by the account
    /// key, names it under the same id. Contacts' next messages start new sessions with it and their
    /// conversations say the device has a new key; the safety number (the account key's) stays.
    public func rotateDeviceKey() async throws -> KeyRotation {
        try await prepareRotation()
        let now = clock.nowMilliseconds(), old = account
        let device = DeviceIdentity(deviceId: old.device.deviceId, keyPair: Ed25519.KeyPair())
        let entries = old.deviceList.devices.map {
            $0.deviceId == device.deviceId ? DeviceEntry(deviceId: device.deviceId, identityKey: device.publicKey, createdAt: now) : $0
        }
        let list = SignedDeviceList.sign(devices: entries, version: old.deviceList.version + 1, accountKey: old.accountKey)
        try adopt(LocalAccount(address: old.address, accountKey: old.accountKey, device: device, deviceList: list,
                               certificateExpiry: now + LocalAccount.certificateLifetime),
                  preKeys: LocalPreKeys.generate(oneTime: LocalPreKeys.defaultOneTimeCount))
        try await relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list.encoded)), address: account.address)
        try await uploadPreKeys(try store.preKeys(), full: true)
        return KeyRotation(deviceId: device.deviceId, oldDeviceKey: old.device.publicKey.bytes, newDeviceKey: device.publicKey.bytes,
                           oldAccountKey: old.accountKey.publicKey.bytes, newAccountKey: old.accountKey.publicKey.bytes, removedDevices: [])
    }

    /// A new account key, and a new identity key and prekeys for this device. The old account key signs a
    /// statement naming the new one, which the relay requires and contacts are shown; the new list, signed
    /// by the new key, names this device alone (every other device
    /// held the old key, which is what a lost or stolen device compromised: link them again). Contacts see
    /// a new safety number and must verify it again.
    public func rotateAccountKey() async throws -> KeyRotation {
        try await prepareRotation()
        let now = clock.nowMilliseconds(), old = account
        let newKey = Ed25519.KeyPair()
        // The device key changes too: the relay then refuses a contact's send sealed to the old one (410),
        // so the contact fetches the new list, sees the new account key, and stops using the old sessions.
        let device = DeviceIdentity(deviceId: old.device.deviceId, keyPair: Ed25519.KeyPair())
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: device.deviceId, identityKey: device.publicKey, createdAt: now)],
                                         version: old.deviceList.version + 1, accountKey: newKey)
        let change = AccountKeyChange.sign(address: ownAddress.description, oldKey: old.accountKey, newKey: newKey.publicKey, signedAt: now)
        // Kept until the relay took it, so that an interrupted rotation can be finished.
        try store.setSetting(Self.pendingKeyChange, Hex.encode(change.encoded))
        try adopt(LocalAccount(address: old.address, accountKey: newKey, device: device, deviceList: list,
                               certificateExpiry: now + LocalAccount.certificateLifetime),
                  preKeys: LocalPreKeys.generate(oneTime: LocalPreKeys.defaultOneTimeCount))
        try await relay.changeAccountKey(AccountKeyChangeRequest(keyChange: Base64Bytes(change.encoded), deviceList: Base64Bytes(list.encoded)),
                                         address: account.address)
        try store.setSetting(Self.pendingKeyChange, nil)
        try await uploadPreKeys(try store.preKeys(), full: true)
        let removed = old.deviceList.devices.map(\.deviceId).filter { $0 != device.deviceId }
        for id in removed { try store.setDeviceName(nil, for: id) }
        return KeyRotation(deviceId: device.deviceId, oldDeviceKey: old.device.publicKey.bytes, newDeviceKey: device.publicKey.bytes,
                           oldAccountKey: old.accountKey.publicKey.bytes, newAccountKey: newKey.publicKey.bytes, removedDevices: removed)
    }

    /// The setting that holds an account key change (hex) until the relay has accepted it.
    static let pendingKeyChange = "pending-account-key-change"

    /// What belongs to the old keys goes first: the account's newest list is fetched, the mailbox drained
    /// (the relay drops mail queued for a key that changes) and the outbox sent (its envelopes carry the old
    /// keys). Anything left in the outbox stops the rotation before anything changed.
    private func prepareRotation() async throws {
        try await refreshOwnDeviceList()
        _ = try await receivePending()
        try? await flushOutbox()
        let waiting = try store.outboxEntries().count
        guard waiting == 0 else { throw ClientError.outboxNotEmpty(waiting) }
    }

    /// Stores the new keys (sessions deleted with them) and uses them from now on.
    private func adopt(_ rotated: LocalAccount, preKeys: LocalPreKeys) throws {
        try store.replaceLocalIdentity(rotated, preKeys: preKeys)
        account = rotated
        manager = Self.sessionManager(account: rotated, store: store, relay: relay, homeRelay: ownAddress.relay, clock: clock,
                                      trustPolicy: trustPolicy)
        token = nil
    }

    /// A rotation whose list never reached the relay (the relay was unreachable, or the program stopped):
    /// the relay still names this device's old key or the old account key, while this device's stored list
    /// is newer. Publishes it now, with fresh prekeys; false when there is nothing to finish.
    func finishInterruptedRotation() async throws -> Bool {
        let published = try SignedDeviceList(verifying: try await relay.account(account.address).deviceList.bytes)
        guard published.version < account.deviceList.version,
              account.deviceList.device(account.device.deviceId)?.identityKey == account.device.publicKey else { return false }
        let list = Base64Bytes(account.deviceList.encoded)
        if published.accountKey == account.accountKey.publicKey {
            try await relay.publishDeviceList(DeviceListUpdate(deviceList: list), address: account.address)
        } else if let pending = try store.setting(Self.pendingKeyChange), let change = Hex.decode(pending) {
            try await relay.changeAccountKey(AccountKeyChangeRequest(keyChange: Base64Bytes(change), deviceList: list), address: account.address)
            try store.setSetting(Self.pendingKeyChange, nil)
        } else {
            return false
        }
        token = nil
        try await uploadPreKeys(try store.preKeys(), full: true)
        return true
    }
}
