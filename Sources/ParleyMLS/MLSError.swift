import ParleyCrypto

/// Everything that can go wrong in the MLS library. None of the cases carries secret material; the
/// strings name a field or a rule, never bytes a peer sent.
public enum MLSError: Error, Equatable, Sendable {
    // Decoding of outside bytes (RFC 9420 §2.1).
    /// The input ended before a field it announced.
    case truncated
    /// Bytes were left after a complete structure.
    case trailingBytes
    /// A variable-length integer used more bytes than its value needs, or the reserved `0b11` prefix.
    case invalidVarint
    /// A field held a value the protocol does not allow (an unknown enum value, a wrong length).
    case invalidValue(String)

    // Cryptography.
    case unsupportedCipherSuite(UInt16)
    /// A signature did not verify (with the label it was made under).
    case invalidSignature
    /// An AEAD or HPKE ciphertext did not authenticate.
    case decryptionFailed
    /// A key was malformed (wrong length, a low-order point).
    case invalidKey

    // Protocol rules (RFC 9420 §§6, 9, 12, 13).
    /// A message was for another group, epoch, or failed a MAC or confirmation check.
    case protocolViolation(String)
    /// The application's credential check refused a leaf's credential.
    case credentialRejected
    /// A secret-tree generation was already used (its key deleted) or lies beyond the allowed window.
    case generationUnavailable(UInt32)
}

extension MLSError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .truncated: "the MLS message ends too early"
        case .trailingBytes: "the MLS message has bytes after its end"
        case .invalidVarint: "the MLS message has a malformed length"
        case .invalidValue(let what): "the MLS message has an invalid \(what)"
        case .unsupportedCipherSuite(let id): "MLS cipher suite \(id) is not supported"
        case .invalidSignature: "an MLS signature does not verify"
        case .decryptionFailed: "an MLS ciphertext does not decrypt"
        case .invalidKey: "an MLS key is malformed"
        case .protocolViolation(let rule): "the MLS message breaks a rule: \(rule)"
        case .credentialRejected: "an MLS member's credential is not accepted"
        case .generationUnavailable(let g): "MLS key generation \(g) is not available (used, or too far ahead)"
        }
    }
}
