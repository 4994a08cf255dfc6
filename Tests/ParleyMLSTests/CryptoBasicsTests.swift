import ParleyCrypto
@testable import ParleyMLS
import Testing

/// crypto-basics.json: the labelled functions of RFC 9420 §5 for each suite.
@Suite struct CryptoBasicsTests {
    @Test func vectors() throws {
        let cases = try MLSVectors.supportedCases("crypto-basics")
        var passed = 0
        for (suite, v) in cases {
            let r = try v.object("ref_hash")
            #expect(hexString(suite.refHash(label: try r.string("label"), value: try r.hex("value"))) == (try r.string("out")), "\(suite) ref_hash")

            let e = try v.object("expand_with_label")
            let expanded = suite.expandWithLabel(secret: try e.secret("secret"), label: try e.string("label"),
                                                 context: try e.hex("context"), length: try e.int("length"))
            #expect(hexString(expanded) == (try e.string("out")), "\(suite) expand_with_label")

            let d = try v.object("derive_secret")
            #expect(hexString(suite.deriveSecret(secret: try d.secret("secret"), label: try d.string("label"))) == (try d.string("out")),
                    "\(suite) derive_secret")

            let t = try v.object("derive_tree_secret")
            let tree = suite.deriveTreeSecret(secret: try t.secret("secret"), label: try t.string("label"),
                                              generation: UInt32(try t.int("generation")), length: try t.int("length"))
            #expect(hexString(tree) == (try t.string("out")), "\(suite) derive_tree_secret")

            let s = try v.object("sign_with_label")
            let key = try SignaturePrivateKey(seed: try s.secret("priv"))
            #expect(hexString(key.publicKey) == (try s.string("pub")))
            let label = try s.string("label"), content = try s.hex("content")
            #expect(suite.verifyWithLabel(publicKey: try s.hex("pub"), label: label, content: content, signature: try s.hex("signature")))
            // Ed25519 is deterministic: our signature is the vector's.
            #expect(hexString(suite.signWithLabel(key, label: label, content: content)) == (try s.string("signature")))
            #expect(!suite.verifyWithLabel(publicKey: try s.hex("pub"), label: label + "x", content: content, signature: try s.hex("signature")))

            let h = try v.object("encrypt_with_label")
            let plaintext = try suite.decryptWithLabel(privateKey: try h.secret("priv"), label: try h.string("label"), context: try h.hex("context"),
                                                       kemOutput: try h.hex("kem_output"), ciphertext: try h.hex("ciphertext"))
            #expect(plaintext == (try h.hex("plaintext")), "\(suite) decrypt_with_label")
            // Encryption is randomised: check that our own ciphertext opens, and only under the same label.
            let sealed = try suite.encryptWithLabel(publicKey: try h.hex("pub"), label: "round trip", context: [1, 2], plaintext: plaintext)
            #expect(try suite.decryptWithLabel(privateKey: try h.secret("priv"), label: "round trip", context: [1, 2], sealed) == plaintext)
            #expect(throws: MLSError.decryptionFailed) {
                try suite.decryptWithLabel(privateKey: try h.secret("priv"), label: "round trip", context: [1, 3], sealed)
            }
            passed += 1
        }
        print("crypto-basics.json: \(passed) vectors passed")
    }

    /// RFC 9180 appendix A.1 (DHKEM(X25519, HKDF-SHA256)): DeriveKeyPair(ikmR) gives skRm / pkRm.
    @Test func deriveKeyPairMatchesRFC9180() {
        let pair = CipherSuite.x25519AES128GCM.deriveKeyPair(ikm: SecretBytes(Hex.decode("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037")!))
        #expect(hexString(pair.privateKey) == "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
        #expect(hexString(pair.publicKey) == "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
    }

    @Test(arguments: CipherSuite.supported) func aeadRoundTripAndTamper(suite: CipherSuite) throws {
        let key = SecretBytes(count: suite.aeadKeyLength) { $0.initializeMemory(as: UInt8.self, repeating: 7) }
        let nonce = [UInt8](repeating: 9, count: 12)
        let sealed = try suite.seal(key: key, nonce: nonce, aad: [1], plaintext: Array("hello".utf8))
        #expect(try suite.open(key: key, nonce: nonce, aad: [1], ciphertext: sealed) == Array("hello".utf8))
        var flipped = sealed
        flipped[0] ^= 1
        #expect(throws: MLSError.decryptionFailed) { try suite.open(key: key, nonce: nonce, aad: [1], ciphertext: flipped) }
        #expect(throws: MLSError.decryptionFailed) { try suite.open(key: key, nonce: nonce, aad: [2], ciphertext: sealed) }
        #expect(throws: MLSError.decryptionFailed) { try suite.open(key: key, nonce: nonce, aad: [1], ciphertext: [1, 2, 3]) }
    }
}
