import CSodium

/// Argon2id (RFC 9106) over `crypto_pwhash` with `crypto_pwhash_ALG_ARGON2ID13`.
public enum Argon2id {
    public static let saltLength = Int(crypto_pwhash_SALTBYTES)

    /// Cost parameters; stored beside whatever they protect so they can be raised later.
    public struct Parameters: Equatable, Codable, Sendable {
        public var opsLimit: UInt64
        public var memLimitBytes: Int
        public init(opsLimit: UInt64, memLimitBytes: Int) {
            self.opsLimit = opsLimit
            self.memLimitBytes = memLimitBytes
        }
        /// libsodium's "interactive" limits (2 passes, 64 MiB).
        public static let interactive = Parameters(opsLimit: UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE),
                                                   memLimitBytes: Int(crypto_pwhash_MEMLIMIT_INTERACTIVE))
        /// libsodium's "moderate" limits (3 passes, 256 MiB), about half a second on this machine.
        public static let moderate = Parameters(opsLimit: UInt64(crypto_pwhash_OPSLIMIT_MODERATE),
                                                memLimitBytes: Int(crypto_pwhash_MEMLIMIT_MODERATE))
    }

    public static func deriveKey(password: SecretBytes, salt: [UInt8], parameters: Parameters,
                                 length: Int = 32) throws(CryptoError) -> SecretBytes {
        Sodium.ready()
        try requireLength(salt, saltLength, "Argon2id salt")
        var failed = false
        let key = SecretBytes(count: length) { out in
            password.withUnsafeBytes { pw in
                failed = crypto_pwhash(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(length),
                    UnsafeRawPointer(pw.bytePointer).assumingMemoryBound(to: CChar.self), UInt64(pw.count), salt,
                    parameters.opsLimit, parameters.memLimitBytes, crypto_pwhash_ALG_ARGON2ID13) != 0
            }
        }
        if failed { throw .keyDerivationFailed }
        return key
    }
}
