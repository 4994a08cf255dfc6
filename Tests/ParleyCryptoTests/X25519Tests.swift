import ParleyCrypto
import Testing

/// RFC 7748 (Elliptic Curves for Security), §5.2 test vectors and §6.1 Diffie-Hellman example.
@Suite struct X25519Tests {
    private func x25519(_ scalar: [UInt8], _ u: [UInt8]) throws -> [UInt8] {
        try X25519.sharedSecret(privateKey: SecretBytes(scalar), publicKey: X25519.PublicKey(u)).unprotectedBytes
    }

    @Test("RFC 7748 §5.2, first vector")
    func rfc7748Vector1() throws {
        let out = try x25519(hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                             hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
        #expect(hexString(out) == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    }

    /// The u-coordinate has its top bit set (…a493), which X25519 must ignore.
    @Test("RFC 7748 §5.2, second vector")
    func rfc7748Vector2() throws {
        let out = try x25519(hex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                             hex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"))
        #expect(hexString(out) == "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")
    }

    /// k = u = 9; each round sets (k, u) = (X25519(k, u), k).
    @Test("RFC 7748 §5.2, iterated: after 1 and 1,000 iterations")
    func rfc7748Iterated() throws {
        var k: [UInt8] = [9] + [UInt8](repeating: 0, count: 31)
        var u = k
        for iteration in 1...1000 {
            (k, u) = (try x25519(k, u), k)
            if iteration == 1 {
                #expect(hexString(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
            }
        }
        #expect(hexString(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    }

    @Test("RFC 7748 §6.1, Alice and Bob")
    func rfc7748DiffieHellman() throws {
        let alice = try X25519.KeyPair(privateKey: secret("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519.KeyPair(privateKey: secret("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(hexString(alice.publicKey.bytes) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(hexString(bob.publicKey.bytes) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")

        let k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(hexString(try X25519.sharedSecret(privateKey: alice.privateKey, publicKey: bob.publicKey)) == k)
        #expect(hexString(try X25519.sharedSecret(privateKey: bob.privateKey, publicKey: alice.publicKey)) == k)
    }

    /// Low-order points make the output all zeros (RFC 7748 §6.1): u = 0 and u = 1.
    @Test("a low-order public key is refused", arguments: [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
    ])
    func lowOrderPublicKey(u: [UInt8]) throws {
        let mine = X25519.KeyPair(random: DeterministicRandom(label: "x25519 low order"))
        #expect(throws: CryptoError.weakPublicKey) {
            try X25519.sharedSecret(privateKey: mine.privateKey, publicKey: X25519.PublicKey(u))
        }
    }

    @Test func wrongLengths() {
        #expect(throws: CryptoError.invalidLength(what: "X25519 public key", expected: 32, actual: 31)) {
            try X25519.PublicKey([UInt8](repeating: 9, count: 31))
        }
        #expect(throws: CryptoError.invalidLength(what: "X25519 private key", expected: 32, actual: 33)) {
            try X25519.KeyPair(privateKey: SecretBytes([UInt8](repeating: 1, count: 33)))
        }
    }
}
