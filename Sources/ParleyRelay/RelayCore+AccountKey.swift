import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

extension RelayCore {
    /// Moves an account to a new account key (PROTOCOL.md §3.5). The only authority is the current key's
    /// signed statement naming the new key, for this account, with a strictly newer device list signed by
    /// the new key; anything else is refused before anything is stored. Devices that leave the list, or
    /// whose key changes, lose their tokens, prekeys and mail as with any list change. `admit` runs once
    /// everything verified, just before it is stored (the route's rate limit).
    func changeAccountKey(_ request: AccountKeyChangeRequest, for rawAddress: String, admit: () async throws -> Void = {}) async throws {
        let address = try parseLocalAddress(rawAddress)
        let change: AccountKeyChange
        do { change = try AccountKeyChange(verifying: request.keyChange.bytes) } catch {
            if case .badSignature = error { throw RelayError.forbidden("the key change is not signed by the key it names as old") }
            throw RelayError.badRequest("invalid key change: \(error)")
        }
        let list = try parseDeviceList(request.deviceList.bytes)
        guard let current = try await verifiedAccount(address) else { throw RelayError.notFound("no account \(address)") }
        do {
            try change.check(address: address, oldKey: try Ed25519.PublicKey(current.accountKey), newKey: list.accountKey)
        } catch {
            throw RelayError.forbidden("\(error)")
        }
        guard list.version > current.deviceList.version else {
            throw RelayError.conflict("device list version \(list.version) is not newer than \(current.deviceList.version)")
        }
        try checkDevices(of: list)
        try await admit()
        let revoked = current.deviceList.devices.filter { old in list.device(old.deviceId)?.identityKey != old.identityKey }
        guard try await storage.replaceAccountKey(address: address, replacing: current.storedList, accountKey: list.accountKey.bytes,
                                                  deviceList: list.encoded, keyChange: change.encoded,
                                                  wiping: revoked.map(\.deviceId)) else {
            throw RelayError.conflict("the device list of \(address) changed meanwhile; fetch it and try again")
        }
        let added = list.devices.filter { new in current.deviceList.device(new.deviceId)?.identityKey != new.identityKey }
        metrics.deviceListChanged(added: added.count, removed: revoked.count)
        await broker.revoke(revoked.map { DeviceAddress(address: address, deviceId: $0.deviceId) })
    }
}
