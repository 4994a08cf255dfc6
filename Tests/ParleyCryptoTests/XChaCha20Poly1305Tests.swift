import ParleyCrypto
import Testing

/// draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305 test vector).
@Suite struct XChaCha20Poly1305Tests {
    static let key = secret("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    static let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
    static let aad = hex("50515253c0c1c2c3c4c5c6c7")
    static let plaintext = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
    static let ciphertext = hex("""
        bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
        731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
        2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
        21f9664c97637da9768812f615c68b13b52e
        """)
    static let tag = hex("c0875924c1c7987947deafd8780acf49")

    @Test("draft-irtf-cfrg-xchacha-03 A.3.1: seal")
    func seal() throws {
        let sealed = try XChaCha20Poly1305.seal(Self.plaintext, associatedData: Self.aad, nonce: Self.nonce, key: Self.key)
        #expect(hexString(sealed) == hexString(Self.ciphertext + Self.tag))
    }

    @Test("draft-irtf-cfrg-xchacha-03 A.3.1: open")
    func open() throws {
        let opened = try XChaCha20Poly1305.open(Self.ciphertext + Self.tag, associatedData: Self.aad, nonce: Self.nonce, key: Self.key)
        #expect(opened == Self.plaintext)
    }

    @Test("the key ‖ nonce form gives the same vector")
    func keyAndNonceForm() throws {
        let keyAndNonce = SecretBytes(Self.key.unprotectedBytes + Self.nonce)
        let sealed = XChaCha20Poly1305.seal(Self.plaintext, associatedData: Self.aad, keyAndNonce: keyAndNonce)
        #expect(sealed == Self.ciphertext + Self.tag)
        #expect(try XChaCha20Poly1305.open(sealed, associatedData: Self.aad, keyAndNonce: keyAndNonce) == Self.plaintext)
    }

    @Test("tampering is detected", arguments: [0, 57, 113, 114, 129])  // ciphertext bytes 0…113, tag 114…129
    func tamperedByte(at index: Int) {
        var sealed = Self.ciphertext + Self.tag
        sealed[index] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(sealed, associatedData: Self.aad, nonce: Self.nonce, key: Self.key)
        }
    }

    @Test func tamperedAssociatedDataOrWrongKeyFails() {
        let sealed = Self.ciphertext + Self.tag
        var aad = Self.aad
        aad[11] ^= 0x01
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(sealed, associatedData: aad, nonce: Self.nonce, key: Self.key)
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(sealed, associatedData: [], nonce: Self.nonce, key: Self.key)
        }
        var nonce = Self.nonce
        nonce[23] ^= 0x01
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(sealed, associatedData: Self.aad, nonce: nonce, key: Self.key)
        }
        let otherKey = SecretBytes([UInt8](repeating: 0x80, count: 32))
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(sealed, associatedData: Self.aad, nonce: Self.nonce, key: otherKey)
        }
    }

    @Test func truncatedInputFails() {
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(Array(Self.tag.dropLast()), associatedData: [], nonce: Self.nonce, key: Self.key)
        }
        #expect(throws: CryptoError.authenticationFailed) {
            try XChaCha20Poly1305.open(Self.ciphertext + Self.tag.dropLast(), associatedData: Self.aad, nonce: Self.nonce, key: Self.key)
        }
    }

    @Test func emptyPlaintextRoundTrip() throws {
        let sealed = try XChaCha20Poly1305.seal([], associatedData: [], nonce: Self.nonce, key: Self.key)
        #expect(sealed.count == XChaCha20Poly1305.tagLength)
        #expect(try XChaCha20Poly1305.open(sealed, associatedData: [], nonce: Self.nonce, key: Self.key) == [])
    }

    @Test func wrongNonceOrKeyLengthThrows() {
        #expect(throws: CryptoError.invalidLength(what: "XChaCha20-Poly1305 nonce", expected: 24, actual: 12)) {
            try XChaCha20Poly1305.seal(Self.plaintext, associatedData: [], nonce: Array(Self.nonce.prefix(12)), key: Self.key)
        }
        #expect(throws: CryptoError.invalidLength(what: "XChaCha20-Poly1305 nonce", expected: 24, actual: 25)) {
            try XChaCha20Poly1305.open(Self.ciphertext + Self.tag, associatedData: Self.aad, nonce: Self.nonce + [0], key: Self.key)
        }
        #expect(throws: CryptoError.invalidLength(what: "XChaCha20-Poly1305 key", expected: 32, actual: 16)) {
            try XChaCha20Poly1305.seal([], associatedData: [], nonce: Self.nonce, key: SecretBytes([UInt8](repeating: 1, count: 16)))
        }
    }
}
