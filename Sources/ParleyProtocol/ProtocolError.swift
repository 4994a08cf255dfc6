import ParleyCrypto

/// Everything that can go wrong above the primitives. Cases carry what a person needs to understand the
/// failure, never key material or plaintext.
public enum ProtocolError: Error, Equatable, Sendable {
    case unsupportedVersion(structure: String, version: UInt8)
    case malformed(String)
    case badSignature(String)
    case crypto(CryptoError)
    /// The PreKeyMessage names a prekey this device no longer has (already used, or never issued).
    case unknownPreKey(String)
    case duplicateOrReplayedMessage
    case tooManySkippedMessages(requested: Int, limit: Int)
    case noSession(address: String, deviceId: UInt32)
    case decryptionFailed
    case senderCertificateExpired
    case senderMismatch(String)
    case deviceListRollback(known: UInt64, offered: UInt64)
    case identityChanged(address: String)
    case unknownDevice(address: String, deviceId: UInt32)
}

extension ProtocolError {
    /// Lifts a primitive's error into this module's error type.
    static func wrap<R>(_ body: () throws(CryptoError) -> R) throws(ProtocolError) -> R {
        do { return try body() } catch { throw .crypto(error) }
    }
}

extension ProtocolError: CustomStringConvertible {
    /// In words for the person at the keyboard: why a message could not be decrypted, or an operation failed.
    public var description: String {
        switch self {
        case .unsupportedVersion(let structure, let version): "\(structure) version \(version) is not supported by this version of Parley"
        case .malformed(let detail): "it is malformed (\(detail))"
        case .badSignature(let what): "the signature on \(what) does not verify"
        case .crypto(let error): error.description
        case .unknownPreKey(let detail): "it names a prekey this device no longer has (\(detail))"
        case .duplicateOrReplayedMessage: "it was already received (a duplicate or a replay)"
        case .tooManySkippedMessages(let requested, let limit): "it is \(requested) messages ahead of the last one received; at most \(limit) are skipped"
        case .noSession(let address, let deviceId): "there is no session with \(address) device #\(deviceId)"
        case .decryptionFailed: "it does not decrypt (a wrong key, or the bytes were changed)"
        case .senderCertificateExpired: "the sender's certificate has expired"
        case .senderMismatch(let detail): "the sender it names is not the one that sealed it (\(detail))"
        case .deviceListRollback(let known, let offered): "the device list offered (version \(offered)) is older than the one known (version \(known))"
        case .identityChanged(let address): "the identity key of \(address) has changed"
        case .unknownDevice(let address, let deviceId): "\(address) has no device #\(deviceId) in its signed device list"
        }
    }
}
