import ParleyCrypto
import Testing

/// libsodium's crypto_pwhash cannot take RFC 9106's secret and associated data, so its vector cannot be
/// reproduced; the known answer below comes from an independent implementation instead.
@Suite struct Argon2idTests {
    static let password = SecretBytes(utf8("correct horse battery staple"))
    static let salt = utf8("parley-test-salt")  // 16 bytes
    static let parameters = Argon2id.Parameters(opsLimit: 3, memLimitBytes: 1 << 20)  // t = 3, m = 1024 KiB, p = 1

    /// Computed with argon2-cffi 25.1.0 (the reference libargon2):
    /// argon2.low_level.hash_secret_raw(b"correct horse battery staple", b"parley-test-salt",
    ///     time_cost=3, memory_cost=1024, parallelism=1, hash_len=32, type=Type.ID, version=19)
    @Test func matchesArgon2Cffi() throws {
        let key = try Argon2id.deriveKey(password: Self.password, salt: Self.salt, parameters: Self.parameters)
        #expect(hexString(key) == "7d04fd5c4957464854e8dc7ada5c506bc684a3fa428878313869e6f03f889d3b")
    }

    @Test func deterministicAndSaltSensitive() throws {
        let a = try Argon2id.deriveKey(password: Self.password, salt: Self.salt, parameters: Self.parameters)
        let b = try Argon2id.deriveKey(password: Self.password, salt: Self.salt, parameters: Self.parameters)
        #expect(a.constantTimeEquals(b))

        var otherSalt = Self.salt
        otherSalt[15] ^= 1
        let c = try Argon2id.deriveKey(password: Self.password, salt: otherSalt, parameters: Self.parameters)
        #expect(!a.constantTimeEquals(c))

        let d = try Argon2id.deriveKey(password: SecretBytes(utf8("correct horse battery stapler")), salt: Self.salt,
                                       parameters: Self.parameters)
        #expect(!a.constantTimeEquals(d))

        let e = try Argon2id.deriveKey(password: Self.password, salt: Self.salt,
                                       parameters: .init(opsLimit: 4, memLimitBytes: 1 << 20))
        #expect(!a.constantTimeEquals(e))
    }

    @Test func outputLengthIsHonoured() throws {
        let long = try Argon2id.deriveKey(password: Self.password, salt: Self.salt, parameters: Self.parameters, length: 64)
        #expect(long.count == 64)
    }

    @Test func wrongSaltLengthThrows() {
        #expect(throws: CryptoError.invalidLength(what: "Argon2id salt", expected: 16, actual: 8)) {
            try Argon2id.deriveKey(password: Self.password, salt: Array(Self.salt.prefix(8)), parameters: Self.parameters)
        }
    }

    /// Below libsodium's minimum memory limit crypto_pwhash refuses to run.
    @Test func impossibleLimitsThrow() {
        #expect(throws: CryptoError.keyDerivationFailed) {
            try Argon2id.deriveKey(password: Self.password, salt: Self.salt,
                                   parameters: .init(opsLimit: 3, memLimitBytes: 1024))
        }
    }
}
