import ParleyCrypto
import Testing

/// SHA-256 and SHA-512 of "abc" (FIPS 180-2 examples) and BLAKE2b (RFC 7693).
@Suite struct HashTests {
    @Test("FIPS 180-2: SHA-256(\"abc\")")
    func sha256() {
        #expect(hexString(SHA256.hash(utf8("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("FIPS 180-2: SHA-512(\"abc\")")
    func sha512() {
        #expect(hexString(SHA512.hash(utf8("abc")))
                == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                 + "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
    }

    @Test("RFC 7693 Appendix A: BLAKE2b-512(\"abc\")")
    func blake2b512() throws {
        #expect(hexString(try BLAKE2b.hash(utf8("abc"), outputLength: 64))
                == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                 + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
    }

    /// The default output length (32) is a distinct function, not a truncation of BLAKE2b-512.
    /// Expected value computed with Python's hashlib.blake2b(b"abc", digest_size=32).
    @Test func blake2b256Default() throws {
        #expect(hexString(try BLAKE2b.hash(utf8("abc"))) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319")
    }

    /// Expected value computed with Python's
    /// hashlib.blake2b(b"Parley keyed BLAKE2b check", key=bytes(range(32)), digest_size=32).
    @Test func keyedBlake2bMatchesHashlib() throws {
        let message = utf8("Parley keyed BLAKE2b check")
        let key = [UInt8](0..<32)
        let expected = "53f6756b2b8e2b3bd988dcfe0679e819b0f5867e03caf02e2c19a15141dea370"
        #expect(hexString(try BLAKE2b.hash(message, key: key)) == expected)
        #expect(hexString(try BLAKE2b.hash(message, key: SecretBytes(key))) == expected)
        #expect(hexString(try BLAKE2b.hash(message)) != expected)
    }

    @Test func blake2bRejectsBadLengths() {
        #expect(throws: CryptoError.self) { try BLAKE2b.hash([], outputLength: 15) }
        #expect(throws: CryptoError.self) { try BLAKE2b.hash([], outputLength: 65) }
        #expect(throws: CryptoError.self) { try BLAKE2b.hash([], key: [UInt8](repeating: 1, count: 65)) }
        #expect(throws: CryptoError.self) { try BLAKE2b.hash([], key: SecretBytes([UInt8](repeating: 1, count: 15))) }
    }
}
