import CSodium

/// X25519 (RFC 7748) over `crypto_scalarmult_curve25519`.
public enum X25519 {
    public static let keyLength = 32

    public struct PublicKey: Hashable, Sendable {
        public let bytes: [UInt8]
        public init(_ bytes: [UInt8]) throws(CryptoError) {
            try requireLength(bytes, X25519.keyLength, "X25519 public key")
            self.bytes = bytes
        }
    }

    public struct KeyPair: Sendable {
        public let privateKey: SecretBytes
        public let publicKey: PublicKey

        /// A new key pair from `random`.
        public init(random: any RandomSource = SystemRandom()) {
            self.init(uncheckedPrivateKey: random.secret(X25519.keyLength))
        }

        /// Rebuilds a key pair from its 32-byte private scalar (clamped by X25519 itself).
        public init(privateKey: SecretBytes) throws(CryptoError) {
            try requireLength(0..<privateKey.count, X25519.keyLength, "X25519 private key")
            self.init(uncheckedPrivateKey: privateKey)
        }

        /// Restores a key pair kept whole in authenticated storage: the public half was computed when the
        /// pair was made, so it is not computed again (a base-point multiplication, ~50 µs, on every load of
        /// a ratchet session otherwise).
        public init(storedPrivateKey privateKey: SecretBytes, publicKey: PublicKey) throws(CryptoError) {
            try requireLength(0..<privateKey.count, X25519.keyLength, "X25519 private key")
            self.privateKey = privateKey
            self.publicKey = publicKey
        }

        init(uncheckedPrivateKey: SecretBytes) {
            Sodium.ready()
            var pub = [UInt8](repeating: 0, count: X25519.keyLength)
            uncheckedPrivateKey.withUnsafeBytes { sk in
                _ = crypto_scalarmult_curve25519_base(&pub, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            privateKey = uncheckedPrivateKey
            publicKey = try! PublicKey(pub)
        }
    }

    /// The shared secret X25519(sk, pk). Refuses an all-zero result, which only a low-order public key
    /// can produce (RFC 7748 §6.1).
    public static func sharedSecret(privateKey: SecretBytes, publicKey: PublicKey) throws(CryptoError) -> SecretBytes {
        Sodium.ready()
        var failed = false
        let secret = SecretBytes(count: keyLength) { out in
            privateKey.withUnsafeBytes { sk in
                failed = crypto_scalarmult_curve25519(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    publicKey.bytes) != 0
            }
        }
        if failed { throw .weakPublicKey }
        return secret
    }

    /// Writes X25519(sk, pk) into `output`; used where several shared secrets are concatenated.
    public static func sharedSecret(privateKey: SecretBytes, publicKey: PublicKey,
                             into output: UnsafeMutableRawBufferPointer) throws(CryptoError) {
        Sodium.ready()
        let status = privateKey.withUnsafeBytes { sk in
            crypto_scalarmult_curve25519(output.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                         sk.baseAddress!.assumingMemoryBound(to: UInt8.self), publicKey.bytes)
        }
        if status != 0 { throw .weakPublicKey }
    }
}
