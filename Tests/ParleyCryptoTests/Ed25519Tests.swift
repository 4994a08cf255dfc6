import ParleyCrypto
import Testing

/// RFC 8032 (EdDSA) §7.1 test vectors for Ed25519, plus tamper checks and the map to X25519.
@Suite struct Ed25519Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let name, secretKey, publicKey, message, signature: String
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(name: "TEST 1",
               secretKey: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
               publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
               message: "",
               signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                        + "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        Vector(name: "TEST 2",
               secretKey: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
               publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
               message: "72",
               signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
                        + "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        Vector(name: "TEST 3",
               secretKey: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
               publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
               message: "af82",
               signature: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
                        + "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
        // The message of TEST SHA(abc) is the 64-byte SHA-512 of "abc".
        Vector(name: "TEST SHA(abc)",
               secretKey: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
               publicKey: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
               message: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                      + "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
               signature: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
                        + "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
    ]

    @Test("RFC 8032 §7.1", arguments: vectors)
    func rfc8032(_ v: Vector) throws {
        let pair = try Ed25519.KeyPair(seed: secret(v.secretKey))
        #expect(hexString(pair.publicKey.bytes) == v.publicKey)
        #expect(hexString(pair.sign(hex(v.message))) == v.signature)
        #expect(try Ed25519.PublicKey(hex(v.publicKey)).isValidSignature(hex(v.signature), for: hex(v.message)))
    }

    @Test func messageOfTestSHAabcIsSHA512OfAbc() {
        #expect(hexString(SHA512.hash(utf8("abc"))) == Self.vectors[3].message)
    }

    @Test func tamperedMessageOrSignatureFails() throws {
        let v = Self.vectors[2]  // TEST 3, message af82
        let key = try Ed25519.PublicKey(hex(v.publicKey))
        let message = hex(v.message), signature = hex(v.signature)
        #expect(key.isValidSignature(signature, for: message))

        #expect(!key.isValidSignature(signature, for: [0xaf, 0x83]))
        #expect(!key.isValidSignature(signature, for: message + [0]))
        #expect(!key.isValidSignature(signature, for: []))
        for index in [0, 31, 32, 63] {  // first and last byte of R and of S
            var bad = signature
            bad[index] ^= 0x01
            #expect(!key.isValidSignature(bad, for: message), "flipped bit in byte \(index)")
        }
        #expect(!key.isValidSignature(Array(signature.dropLast()), for: message))
        let otherKey = try Ed25519.PublicKey(hex(Self.vectors[0].publicKey))
        #expect(!otherKey.isValidSignature(signature, for: message))
    }

    /// TEST 1's signature with S replaced by S + L (the group order): same point equation, but a
    /// non-canonical scalar that must be refused (signature malleability). Computed with Python.
    @Test func nonCanonicalSIsRefused() throws {
        let key = try Ed25519.PublicKey(hex(Self.vectors[0].publicKey))
        let malleated = hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                          + "4c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b")
        #expect(key.isValidSignature(hex(Self.vectors[0].signature), for: []))
        #expect(!key.isValidSignature(malleated, for: []))
    }

    @Test func signAndVerifyRoundTrip() {
        let pair = Ed25519.KeyPair(random: DeterministicRandom(label: "ed25519 round trip"))
        let message = utf8("attack at dawn")
        let signature = pair.sign(message)
        #expect(pair.publicKey.isValidSignature(signature, for: message))
        #expect(!pair.publicKey.isValidSignature(signature, for: utf8("attack at dusk")))
    }

    @Test func conversionToX25519AgreesOnBothSides() throws {
        for label in ["alice", "bob", "carol"] {
            let pair = Ed25519.KeyPair(random: DeterministicRandom(label: "ed25519→x25519 " + label))
            let converted = pair.toX25519()
            // The converted private scalar times the base point is the converted public key.
            let rebuilt = try X25519.KeyPair(privateKey: converted.privateKey)
            #expect(rebuilt.publicKey == (try pair.publicKey.toX25519()))
        }
    }

    @Test func conversionOfRFC8032Test1MatchesPyNaCl() throws {
        let pair = try Ed25519.KeyPair(seed: secret(Self.vectors[0].secretKey))
        // Computed with PyNaCl 1.6.2: crypto_sign_ed25519_pk_to_curve25519(TEST 1 public key).
        let expectedPublic = "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e"
        // Computed with PyNaCl 1.6.2: crypto_sign_ed25519_sk_to_curve25519(TEST 1 seed ‖ public key).
        let expectedPrivate = "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f"
        #expect(hexString(try pair.publicKey.toX25519().bytes) == expectedPublic)
        #expect(hexString(pair.toX25519().privateKey) == expectedPrivate)
        #expect(hexString(pair.toX25519().publicKey.bytes) == expectedPublic)
    }

    /// Two identities that each convert their Ed25519 key agree on one X25519 secret.
    @Test func convertedKeysAgree() throws {
        let a = Ed25519.KeyPair(random: DeterministicRandom(label: "ed-dh a"))
        let b = Ed25519.KeyPair(random: DeterministicRandom(label: "ed-dh b"))
        let ab = try X25519.sharedSecret(privateKey: a.toX25519().privateKey, publicKey: b.publicKey.toX25519())
        let ba = try X25519.sharedSecret(privateKey: b.toX25519().privateKey, publicKey: a.publicKey.toX25519())
        #expect(ab.constantTimeEquals(ba))
    }

    /// The identity (y = 1) and the order-4 point y = 0 have small order; libsodium (and PyNaCl's
    /// crypto_sign_ed25519_pk_to_curve25519) refuses to convert them.
    @Test("a small-order Ed25519 key does not convert", arguments: [
        [1] + [UInt8](repeating: 0, count: 31),
        [UInt8](repeating: 0, count: 32),
    ])
    func smallOrderKeyDoesNotConvert(bytes: [UInt8]) throws {
        let key = try Ed25519.PublicKey(bytes)
        #expect(throws: CryptoError.invalidPublicKey) { try key.toX25519() }
    }

    @Test func wrongLengths() {
        #expect(throws: CryptoError.invalidLength(what: "Ed25519 seed", expected: 32, actual: 31)) {
            try Ed25519.KeyPair(seed: SecretBytes([UInt8](repeating: 7, count: 31)))
        }
        #expect(throws: CryptoError.invalidLength(what: "Ed25519 public key", expected: 32, actual: 33)) {
            try Ed25519.PublicKey([UInt8](repeating: 7, count: 33))
        }
    }
}
