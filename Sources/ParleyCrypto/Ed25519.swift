import CSodium

/// Ed25519 (RFC 8032, pure) over `crypto_sign_*`, plus the birational map to X25519 that lets one
/// identity key both sign and take part in Diffie-Hellman.
public enum Ed25519 {
    public static let publicKeyLength = 32
    public static let seedLength = 32
    public static let signatureLength = 64

    public struct PublicKey: Hashable, Sendable {
        public let bytes: [UInt8]
        public init(_ bytes: [UInt8]) throws(CryptoError) {
            try requireLength(bytes, Ed25519.publicKeyLength, "Ed25519 public key")
            self.bytes = bytes
        }

        /// Verifies a detached signature. Non-canonical and small-order encodings are refused by libsodium.
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            Sodium.ready()
            guard signature.count == Ed25519.signatureLength else { return false }
            return crypto_sign_verify_detached(signature, message, UInt64(message.count), bytes) == 0
        }

        /// The X25519 public key on the same curve point (Montgomery form).
        public func toX25519() throws(CryptoError) -> X25519.PublicKey {
            Sodium.ready()
            var out = [UInt8](repeating: 0, count: X25519.keyLength)
            guard crypto_sign_ed25519_pk_to_curve25519(&out, bytes) == 0 else { throw .invalidPublicKey }
            return try X25519.PublicKey(out)
        }
    }

    public struct KeyPair: Sendable {
        /// The 32-byte RFC 8032 private key (seed); the expanded 64-byte form is derived when needed.
        public let seed: SecretBytes
        public let publicKey: PublicKey
        private let expanded: SecretBytes

        public init(random: any RandomSource = SystemRandom()) {
            try! self.init(seed: random.secret(Ed25519.seedLength))
        }

        public init(seed: SecretBytes) throws(CryptoError) {
            Sodium.ready()
            try requireLength(0..<seed.count, Ed25519.seedLength, "Ed25519 seed")
            var pub = [UInt8](repeating: 0, count: Ed25519.publicKeyLength)
            expanded = SecretBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { sk in
                seed.withUnsafeBytes { s in
                    _ = crypto_sign_seed_keypair(&pub, sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                 s.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            self.seed = seed
            publicKey = try PublicKey(pub)
        }

        public func sign(_ message: [UInt8]) -> [UInt8] {
            var signature = [UInt8](repeating: 0, count: Ed25519.signatureLength)
            expanded.withUnsafeBytes { sk in
                _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count),
                                         sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            return signature
        }

        /// The X25519 private scalar for this key: the first half of SHA-512(seed), clamped
        /// (`crypto_sign_ed25519_sk_to_curve25519`).
        public func toX25519() -> X25519.KeyPair {
            let scalar = SecretBytes(count: X25519.keyLength) { out in
                expanded.withUnsafeBytes { sk in
                    _ = crypto_sign_ed25519_sk_to_curve25519(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                             sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            return X25519.KeyPair(uncheckedPrivateKey: scalar)
        }
    }
}
