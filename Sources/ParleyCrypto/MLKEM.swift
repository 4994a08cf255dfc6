import Crypto
import Foundation

/// ML-KEM-1024 (FIPS 203) from swift-crypto's BoringSSL — the one primitive libsodium 1.0.18 lacks.
public enum MLKEM1024KEM {
    public static let publicKeyLength = 1568
    public static let ciphertextLength = 1568
    public static let seedLength = 64
    public static let sharedSecretLength = 32

    public struct PublicKey: Hashable, Sendable {
        public let bytes: [UInt8]
        let key: MLKEM1024.PublicKey

        public init(_ bytes: [UInt8]) throws(CryptoError) {
            try requireLength(bytes, MLKEM1024KEM.publicKeyLength, "ML-KEM-1024 public key")
            do { key = try MLKEM1024.PublicKey(rawRepresentation: bytes) } catch { throw .invalidPublicKey }
            self.bytes = bytes
        }

        public static func == (a: PublicKey, b: PublicKey) -> Bool { a.bytes == b.bytes }
        public func hash(into hasher: inout Hasher) { hasher.combine(bytes) }

        /// Returns (ciphertext, shared secret).
        public func encapsulate() throws(CryptoError) -> (ciphertext: [UInt8], sharedSecret: SecretBytes) {
            do {
                let result = try key.encapsulate()
                let secret = result.sharedSecret.withUnsafeBytes { SecretBytes($0) }
                return (Array(result.encapsulated), secret)
            } catch { throw .kemFailed }
        }
    }

    public struct KeyPair: Sendable {
        /// The 64-byte FIPS 203 seed d ‖ z; the expanded decapsulation key is rebuilt from it.
        public let seed: SecretBytes
        public let publicKey: PublicKey
        private let key: MLKEM1024.PrivateKey

        public init(random: any RandomSource = SystemRandom()) {
            try! self.init(seed: random.secret(MLKEM1024KEM.seedLength))
        }

        public init(seed: SecretBytes) throws(CryptoError) {
            try requireLength(0..<seed.count, MLKEM1024KEM.seedLength, "ML-KEM-1024 seed")
            do {
                key = try seed.withUnsafeBytes { try MLKEM1024.PrivateKey(seedRepresentation: $0, publicKey: nil) }
                publicKey = try PublicKey(Array(key.publicKey.rawRepresentation))
            } catch { throw .kemFailed }
            self.seed = seed
        }

        public func decapsulate(_ ciphertext: [UInt8]) throws(CryptoError) -> SecretBytes {
            try requireLength(ciphertext, MLKEM1024KEM.ciphertextLength, "ML-KEM-1024 ciphertext")
            do {
                let shared = try key.decapsulate(ciphertext)
                return shared.withUnsafeBytes { SecretBytes($0) }
            } catch { throw .kemFailed }
        }
    }
}
