import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// One device of this account, as `parley devices` lists it.
public struct DeviceInfo: Sendable, Equatable {
    public let id: UInt32
    public let identityKey: [UInt8]
    public let createdAt: UInt64
    public let name: String?
    public let isThisDevice: Bool

    public init(id: UInt32, identityKey: [UInt8], createdAt: UInt64, name: String?, isThisDevice: Bool) {
        self.id = id
        self.identityKey = identityKey
        self.createdAt = createdAt
        self.name = name
        self.isThisDevice = isThisDevice
    }
}

/// This account's devices (PROTOCOL.md §15): linking a new one, naming and revoking. Every device holds the
/// account key (§3.4), so any of them can sign a new device list.
extension Engine {
    /// The devices in this account's newest signed list (fetched from the relay first when it is reachable).
    public func devices() async throws -> [DeviceInfo] {
        do { try await refreshOwnDeviceList() } catch ClientError.network {}
        let names = try store.deviceNames()
        return account.deviceList.devices.map {
            DeviceInfo(id: $0.deviceId, identityKey: $0.identityKey.bytes, createdAt: $0.createdAt, name: names[$0.deviceId],
                       isThisDevice: $0.deviceId == account.device.deviceId)
        }
    }

    /// Drops the cached sign-in token (the next request signs in again).
    public func forgetToken() { token = nil }

    public func nameDevice(_ id: UInt32, _ name: String?) throws {
        guard account.deviceList.device(id) != nil else { throw ClientError.unknownDevice(id) }
        try store.setDeviceName(name, for: id)
    }

    /// Links the device that shows `code`: signs and publishes a device list that adds its key, uploads
    /// contacts, device names and the newest `historyPerConversation` messages of each conversation as an
    /// encrypted attachment, and leaves the sealed provisioning message in the code's slot. Returns the new
    /// device's id.
    public func linkDevice(_ code: LinkCode, name: String? = nil,
                           historyPerConversation: Int = 0) async throws -> (deviceId: UInt32, transferred: LinkTransfer.Summary) {
        guard code.relay == ownAddress.relay else {
            throw ClientError.invalidAddress("that link code is for the relay \(code.relay), but this account lives on \(ownAddress.relay)")
        }
        do { try await refreshOwnDeviceList() } catch ClientError.network {}
        guard !account.deviceList.devices.contains(where: { $0.identityKey == code.deviceKey }) else {
            throw ClientError.invalidAddress("that device is already linked")
        }
        let highest = max(account.deviceList.devices.map(\.deviceId).max() ?? 0, UInt32(try store.setting("highest-device-id") ?? "") ?? 0)
        let deviceId = highest + 1
        let entries = account.deviceList.devices + [DeviceEntry(deviceId: deviceId, identityKey: code.deviceKey, createdAt: clock.nowMilliseconds())]
        let list = SignedDeviceList.sign(devices: entries, version: account.deviceList.version + 1, accountKey: account.accountKey)

        // Named first, so the new device learns its own name with the others.
        if let name { try store.setDeviceName(name, for: deviceId) }
        let (transfer, summary) = try LinkTransfer.export(store, historyPerConversation: historyPerConversation)
        let pointer = try await upload(transfer, fileName: "link-transfer", contentType: "application/x-parley-link")
        try await publishOwnDeviceList(list)
        try store.setSetting("highest-device-id", String(deviceId))
        let payload = ProvisioningPayload(address: account.address, accountKey: account.accountKey, deviceId: deviceId,
                                          deviceList: list, transfer: pointer)
        let sealed = try Provisioning.seal(payload, to: code)
        try await authorised { try await relay.fillProvisioning(id: code.slotId, message: ProvisioningMessage(message: Base64Bytes(sealed)), token: $0) }
        return (deviceId, summary)
    }

    /// Removes device `id` from the account: the relay drops its tokens, prekeys and mail at once, it can no
    /// longer sign in, and contacts stop encrypting to it when their next send is refused for it. Its leaves
    /// are removed from every group this device is in (PROTOCOL.md §17.8).
    public func revokeDevice(_ id: UInt32) async throws {
        do { try await refreshOwnDeviceList() } catch ClientError.network {}
        guard id != account.device.deviceId else { throw ClientError.invalidAddress("this is the device you are using; revoke it from another one") }
        guard account.deviceList.device(id) != nil else { throw ClientError.unknownDevice(id) }
        let entries = account.deviceList.devices.filter { $0.deviceId != id }
        try await publishOwnDeviceList(SignedDeviceList.sign(devices: entries, version: account.deviceList.version + 1,
                                                             accountKey: account.accountKey))
        try store.setDeviceName(nil, for: id)
        await removeRevokedDeviceFromGroups(id)
    }

    /// Publishes a newer list of this account and adopts it (sessions with removed devices are dropped).
    private func publishOwnDeviceList(_ list: SignedDeviceList) async throws {
        try await relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list.encoded)), address: account.address)
        try await manager.updateDeviceListIfNewer(list, for: ownAddress)
        account = await manager.account
        try store.saveLocalAccount(account)
    }

    // MARK: The new device's side

    /// Turns a collected provisioning payload into this device's account: the store gets the account key,
    /// this device's key and id, the signed list and fresh prekeys; then the prekeys are uploaded (the list
    /// already names this device, so it can sign in) and the contacts and history are fetched and installed.
    public static func completeLink(_ payload: ProvisioningPayload, deviceKey: Ed25519.KeyPair, store: EncryptedStore,
                                    relay: any RelayTransport, clock: any WallClock = SystemWallClock()) async throws -> (Engine, LinkTransfer.Summary) {
        if let existing = try store.localAccount() { throw ClientError.accountExists(existing.address) }
        let account = LocalAccount(address: payload.address, accountKey: payload.accountKey,
                                   device: DeviceIdentity(deviceId: payload.deviceId, keyPair: deviceKey), deviceList: payload.deviceList,
                                   certificateExpiry: clock.nowMilliseconds() + LocalAccount.certificateLifetime)
        let preKeys = LocalPreKeys.generate(oneTime: LocalPreKeys.defaultOneTimeCount)
        try store.saveLocalAccount(account, preKeys: preKeys)
        try store.setSetting("highest-device-id", String(payload.deviceList.devices.map(\.deviceId).max() ?? payload.deviceId))
        try store.setSetting(Engine.readyForGroupsUnsent, "1")
        let engine = try Engine(store: store, relay: relay, clock: clock)
        try await engine.uploadPreKeys(preKeys, full: true)
        // KeyPackages at once, so that the account's other devices can add this one to its groups (§17.8);
        // a relay that cannot take them now is asked again when a mailbox page says they run low.
        _ = try? await engine.stockKeyPackages()
        var summary = LinkTransfer.Summary()
        if let transfer = payload.transfer {
            let blob = try await relay.downloadAttachment(id: transfer.id, maxBytes: Self.downloadLimit(transfer))
            var bytes = try AttachmentCipher.open(blob, pointer: transfer)
            defer { wipe(&bytes) }
            summary = try LinkTransfer.install(bytes, into: store)
        }
        // The account's other devices are told at once, so that they add this one to its groups now (§17.8).
        await engine.announceReadyForGroups()
        return (engine, summary)
    }
}

/// A new device waiting to be linked: its keys, its slot on the relay and the code to show.
public struct PendingLink: Sendable {
    public let code: LinkCode
    public let deviceKey: Ed25519.KeyPair
    let ephemeral: X25519.KeyPair
    let relay: any RelayTransport

    /// Opens a provisioning slot on `relay` (`host[:port]` as in account addresses) and makes the keys.
    public static func begin(relay: any RelayTransport, relayName: String) async throws -> PendingLink {
        let slot = try await relay.createProvisioning()
        guard slot.id.count == 32, let bytes = Hex.decode(slot.id) else { throw ClientError.malformedResponse("provisioning slot id") }
        let ephemeral = X25519.KeyPair()
        let deviceKey = Ed25519.KeyPair()
        return PendingLink(code: LinkCode(relay: relayName, slot: bytes, ephemeralKey: ephemeral.publicKey, deviceKey: deviceKey.publicKey),
                           deviceKey: deviceKey, ephemeral: ephemeral, relay: relay)
    }

    /// Polls the slot until the existing device has filled it (or `timeout` passes), then opens and checks
    /// the payload. `waiting` is called before each poll with the seconds left.
    public func waitForPayload(timeout: Duration, every interval: Duration = .seconds(1),
                               waiting: @Sendable (Int) -> Void = { _ in }) async throws -> ProvisioningPayload {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            waiting(Int((deadline - clock.now).components.seconds))
            if let message = try await relay.collectProvisioning(id: code.slotId) {
                return try Provisioning.open(message.message.bytes, ephemeral: ephemeral, code: code)
            }
            try await Task.sleep(for: interval)
        }
        throw ClientError.timedOut("no existing device answered the link code in time")
    }
}
