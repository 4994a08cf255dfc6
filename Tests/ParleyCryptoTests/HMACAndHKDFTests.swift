import ParleyCrypto
import Testing

/// RFC 4231 (HMAC-SHA-256 test cases) and RFC 5869 Appendix A (HKDF-SHA-256 test cases).
@Suite struct HMACAndHKDFTests {
    struct HMACCase: Sendable, CustomTestStringConvertible {
        let number: Int
        let key, data: [UInt8]
        let expected: String
        var testDescription: String { "RFC 4231 test case \(number)" }
    }

    static let rfc4231: [HMACCase] = [
        HMACCase(number: 1, key: [UInt8](repeating: 0x0b, count: 20), data: utf8("Hi There"),
                 expected: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        HMACCase(number: 2, key: utf8("Jefe"), data: utf8("what do ya want for nothing?"),
                 expected: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        HMACCase(number: 3, key: [UInt8](repeating: 0xaa, count: 20), data: [UInt8](repeating: 0xdd, count: 50),
                 expected: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        HMACCase(number: 4, key: Array(0x01...0x19), data: [UInt8](repeating: 0xcd, count: 50),
                 expected: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        HMACCase(number: 6, key: [UInt8](repeating: 0xaa, count: 131),
                 data: utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
                 expected: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        HMACCase(number: 7, key: [UInt8](repeating: 0xaa, count: 131),
                 data: utf8("This is a test using a larger than block-size key and a larger than block-size data. "
                          + "The key needs to be hashed before being used by the HMAC algorithm."),
                 expected: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test("RFC 4231 HMAC-SHA-256", arguments: rfc4231)
    func hmac(_ c: HMACCase) {
        #expect(hexString(HMACSHA256.authenticate(c.data, key: c.key)) == c.expected)
        #expect(hexString(HMACSHA256.authenticate(c.data, key: SecretBytes(c.key))) == c.expected)
        #expect(HMACSHA256.verify(hex(c.expected), message: c.data, key: SecretBytes(c.key)))
    }

    /// Test case 5 publishes only the first 128 bits of the output.
    @Test("RFC 4231 test case 5 (truncated to 128 bits)")
    func hmacTruncated() {
        let tag = HMACSHA256.authenticate(utf8("Test With Truncation"), key: [UInt8](repeating: 0x0c, count: 20))
        #expect(tag.count == 32)
        #expect(hexString(tag.prefix(16)) == "a3b6167473100ee06e0c796c2955552b")
    }

    @Test func hmacVerifyRejectsWrongTagOrMessage() {
        let c = Self.rfc4231[1]
        var tag = hex(c.expected)
        #expect(!HMACSHA256.verify(tag, message: utf8("what do ya want for nothing!"), key: SecretBytes(c.key)))
        #expect(!HMACSHA256.verify(Array(tag.prefix(16)), message: c.data, key: SecretBytes(c.key)))
        tag[31] ^= 1
        #expect(!HMACSHA256.verify(tag, message: c.data, key: SecretBytes(c.key)))
    }

    struct HKDFCase: Sendable, CustomTestStringConvertible {
        let number: Int
        let ikm, salt, info: [UInt8]
        let length: Int
        let prk, okm: String
        var testDescription: String { "RFC 5869 test case \(number)" }
    }

    static let rfc5869: [HKDFCase] = [
        HKDFCase(number: 1, ikm: [UInt8](repeating: 0x0b, count: 22), salt: Array(0x00...0x0c), info: Array(0xf0...0xf9),
                 length: 42,
                 prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
                 okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        HKDFCase(number: 2, ikm: Array(0x00...0x4f), salt: Array(0x60...0xaf), info: Array(0xb0...0xff),
                 length: 82,
                 prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
                 okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
                    + "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
                    + "cc30c58179ec3e87c14c01d5c1f3434f1d87"),
        // Zero-length salt and info.
        HKDFCase(number: 3, ikm: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [],
                 length: 42,
                 prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
                 okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
    ]

    @Test("RFC 5869 HKDF-SHA-256", arguments: rfc5869)
    func hkdf(_ c: HKDFCase) {
        let prk = HKDFSHA256.extract(salt: c.salt, inputKeyMaterial: SecretBytes(c.ikm))
        #expect(hexString(prk) == c.prk)
        #expect(hexString(HKDFSHA256.expand(pseudoRandomKey: prk, info: c.info, length: c.length)) == c.okm)
        #expect(hexString(HKDFSHA256.deriveKey(inputKeyMaterial: SecretBytes(c.ikm), salt: c.salt, info: c.info, length: c.length)) == c.okm)
    }

    /// The secret-salt overloads must compute the same function (test case 1).
    @Test func secretSaltOverloadsMatch() {
        let c = Self.rfc5869[0]
        let prk = HKDFSHA256.extract(salt: SecretBytes(c.salt), inputKeyMaterial: SecretBytes(c.ikm))
        #expect(hexString(prk) == c.prk)
        let okm = HKDFSHA256.deriveKey(inputKeyMaterial: SecretBytes(c.ikm), salt: SecretBytes(c.salt), info: c.info, length: c.length)
        #expect(hexString(okm) == c.okm)
    }

    /// A shorter output is a prefix of a longer one, across block boundaries.
    @Test func expandLengthsArePrefixes() {
        let c = Self.rfc5869[1]
        let prk = HKDFSHA256.extract(salt: c.salt, inputKeyMaterial: SecretBytes(c.ikm))
        for length in [1, 31, 32, 33, 64, 65] {
            let okm = HKDFSHA256.expand(pseudoRandomKey: prk, info: c.info, length: length)
            #expect(hexString(okm) == String(c.okm.prefix(2 * length)), "length \(length)")
        }
    }
}
