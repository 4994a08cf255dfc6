import ParleyClient
import ParleyProtocol

/// `parley rotate-keys`: what changed, for `--json` and the daemon.
public struct KeyRotationResult: Codable, Sendable, Equatable {
    /// "device" or "account".
    public let rotated: String
    public let device: UInt32
    /// Fingerprints (KeyFingerprint.full) before and after.
    public let deviceKey: String
    public let previousDeviceKey: String
    public let accountKey: String
    public let previousAccountKey: String
    /// Other devices that left the account with a new account key: they must be linked again.
    public let removedDevices: [UInt32]
}

extension Operations {
    /// Incident response: a new identity key and prekeys for this device, or (`account`) a new account key.
    public func rotateKeys(account: Bool) async throws -> KeyRotationResult {
        let rotation = account ? try await engine.rotateAccountKey() : try await engine.rotateDeviceKey()
        return KeyRotationResult(rotated: account ? "account" : "device", device: rotation.deviceId,
                                 deviceKey: KeyFingerprint.full(rotation.newDeviceKey),
                                 previousDeviceKey: KeyFingerprint.full(rotation.oldDeviceKey),
                                 accountKey: KeyFingerprint.full(rotation.newAccountKey),
                                 previousAccountKey: KeyFingerprint.full(rotation.oldAccountKey),
                                 removedDevices: rotation.removedDevices)
    }
}
