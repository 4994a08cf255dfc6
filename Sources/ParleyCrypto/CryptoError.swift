/// Errors raised by the primitives. None of them carries key material or plaintext.
public enum CryptoError: Error, Equatable, Sendable {
    /// A key, nonce or signature had the wrong length.
    case invalidLength(what: String, expected: Int, actual: Int)
    /// AEAD authentication failed: wrong key, wrong associated data, or tampered ciphertext.
    case authenticationFailed
    /// An X25519 exchange produced the all-zero output (the peer sent a low-order point).
    case weakPublicKey
    /// A public key could not be converted or parsed.
    case invalidPublicKey
    /// Argon2id could not run with the requested limits (usually: out of memory).
    case keyDerivationFailed
    /// A KEM operation failed (malformed key or ciphertext).
    case kemFailed
}

@inline(__always)
func requireLength(_ bytes: some Collection, _ expected: Int, _ what: String) throws(CryptoError) {
    guard bytes.count == expected else {
        throw .invalidLength(what: what, expected: expected, actual: bytes.count)
    }
}

extension CryptoError: CustomStringConvertible {
    /// In words for the person at the keyboard (shown for a message that could not be decrypted).
    public var description: String {
        switch self {
        case .invalidLength(let what, let expected, let actual): "\(what) has \(actual) bytes where \(expected) belong"
        case .authenticationFailed: "it does not authenticate (a wrong key, or the bytes were changed)"
        case .weakPublicKey: "it carries a weak public key (a low-order point)"
        case .invalidPublicKey: "it carries a public key that is not valid"
        case .keyDerivationFailed: "the key derivation could not run (out of memory?)"
        case .kemFailed: "its post-quantum key exchange failed (a malformed key or ciphertext)"
        }
    }
}
