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
