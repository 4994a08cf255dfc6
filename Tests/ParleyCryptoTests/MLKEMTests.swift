import ParleyCrypto
import Testing

/// ML-KEM-1024 (FIPS 203): key generation from the NIST ACVP vector, decapsulation of a kyber-py
/// ciphertext, implicit rejection, and the API's length checks. Sources in MLKEM1024Vectors.swift.
@Suite struct MLKEMTests {
    static let pair = try! MLKEM1024KEM.KeyPair(seed: secret(MLKEM1024Vectors.seed))

    @Test("ACVP keyGen ML-KEM-1024 tcId 51: encapsulation key from seed d ‖ z")
    func keyGenFromSeed() {
        #expect(hexString(SHA256.hash(Self.pair.publicKey.bytes)) == MLKEM1024Vectors.encapsulationKeySHA256)
    }

    @Test("decapsulates a ciphertext that kyber-py produced")
    func decapsulateKyberPyCiphertext() throws {
        let ciphertext = hex(MLKEM1024Vectors.ciphertext)
        #expect(ciphertext.count == MLKEM1024KEM.ciphertextLength)
        #expect(hexString(try Self.pair.decapsulate(ciphertext)) == MLKEM1024Vectors.sharedSecret)
    }

    /// A modified ciphertext is not an error: FIPS 203 returns the pseudorandom J(z ‖ c) instead.
    @Test("implicit rejection matches kyber-py")
    func implicitRejection() throws {
        var ciphertext = hex(MLKEM1024Vectors.ciphertext)
        ciphertext[0] ^= 0x01
        let rejected = try Self.pair.decapsulate(ciphertext)
        #expect(hexString(rejected) == MLKEM1024Vectors.tamperedCiphertextSharedSecret)
        #expect(hexString(rejected) != MLKEM1024Vectors.sharedSecret)
    }

    @Test func encapsulateDecapsulateRoundTrip() throws {
        let pair = MLKEM1024KEM.KeyPair(random: DeterministicRandom(label: "ml-kem round trip"))
        let (ciphertext, sent) = try pair.publicKey.encapsulate()
        #expect(ciphertext.count == MLKEM1024KEM.ciphertextLength)
        #expect(sent.count == MLKEM1024KEM.sharedSecretLength)
        #expect(try pair.decapsulate(ciphertext).constantTimeEquals(sent))
        #expect(!(try Self.pair.decapsulate(ciphertext).constantTimeEquals(sent)))  // someone else's key
    }

    @Test func publicKeyRoundTripsThroughBytes() throws {
        let parsed = try MLKEM1024KEM.PublicKey(Self.pair.publicKey.bytes)
        #expect(parsed == Self.pair.publicKey)
        let (ciphertext, sent) = try parsed.encapsulate()
        #expect(try Self.pair.decapsulate(ciphertext).constantTimeEquals(sent))
    }

    @Test func sameSeedSameKeyDifferentSeedDifferentKey() throws {
        let again = try MLKEM1024KEM.KeyPair(seed: secret(MLKEM1024Vectors.seed))
        #expect(again.publicKey == Self.pair.publicKey)
        var seed = hex(MLKEM1024Vectors.seed)
        seed[0] ^= 1  // d changes the whole key
        #expect(try MLKEM1024KEM.KeyPair(seed: SecretBytes(seed)).publicKey != Self.pair.publicKey)
    }

    @Test func wrongLengthsThrow() {
        let ciphertext = hex(MLKEM1024Vectors.ciphertext)
        #expect(throws: CryptoError.invalidLength(what: "ML-KEM-1024 ciphertext", expected: 1568, actual: 1567)) {
            try Self.pair.decapsulate(Array(ciphertext.dropLast()))
        }
        #expect(throws: CryptoError.invalidLength(what: "ML-KEM-1024 ciphertext", expected: 1568, actual: 1569)) {
            try Self.pair.decapsulate(ciphertext + [0])
        }
        #expect(throws: CryptoError.invalidLength(what: "ML-KEM-1024 seed", expected: 64, actual: 32)) {
            try MLKEM1024KEM.KeyPair(seed: SecretBytes([UInt8](repeating: 1, count: 32)))
        }
        #expect(throws: CryptoError.invalidLength(what: "ML-KEM-1024 public key", expected: 1568, actual: 1567)) {
            try MLKEM1024KEM.PublicKey(Array(Self.pair.publicKey.bytes.dropLast()))
        }
    }

    /// FIPS 203 §7.2 input check: every 12-bit coefficient of the key must be below q = 3329.
    @Test func nonCanonicalPublicKeyIsRefused() {
        var bytes = Self.pair.publicKey.bytes
        bytes[0] = 0xff
        bytes[1] |= 0x0f  // first coefficient = 0xfff = 4095 ≥ q
        #expect(throws: CryptoError.invalidPublicKey) { try MLKEM1024KEM.PublicKey(bytes) }
    }
}
