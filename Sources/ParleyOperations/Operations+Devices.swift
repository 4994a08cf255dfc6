import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// This account's devices, and a contact's.
extension Operations {
    /// This account's devices (its newest signed list, refreshed from the relay when it can be reached), or
    /// a contact's from the device list last seen.
    public func devices(of contact: AccountAddress? = nil) async throws -> [DeviceResult] {
        if let contact, contact != engine.ownAddress {
            guard let known = try engine.contact(contact) else { throw ClientError.unknownContact(contact) }
            return (known.account.deviceList?.devices ?? []).map {
                DeviceResult(id: $0.deviceId, identityKey: KeyFingerprint.full($0.identityKey.bytes), created: $0.createdAt,
                             thisDevice: nil, name: nil)
            }
        }
        return try await engine.devices().map {
            DeviceResult(id: $0.id, identityKey: KeyFingerprint.full($0.identityKey), created: $0.createdAt,
                         thisDevice: $0.isThisDevice, name: $0.name)
        }
    }

    /// Links the new device that shows `code` and sends it the account (and the newest `history` messages
    /// of each conversation).
    public func linkDevice(code: String, name: String?, history: Int) async throws -> LinkedDeviceResult {
        guard history >= 0 else { throw OperationError.invalidInput("the history count cannot be negative") }
        let parsed: LinkCode
        do { parsed = try LinkCode(text: code) } catch { throw OperationError.invalidInput("that is not a link code: \(error)") }
        let (id, summary) = try await engine.linkDevice(parsed, name: name, historyPerConversation: history)
        return LinkedDeviceResult(device: id, contacts: summary.contacts, messages: summary.messages)
    }

    public func nameDevice(_ id: UInt32, _ name: String) async throws {
        try await engine.nameDevice(id, name.isEmpty ? nil : name)
    }

    public func revokeDevice(_ id: UInt32) async throws {
        try await engine.revokeDevice(id)
    }
}
