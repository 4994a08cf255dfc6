import ParleyCrypto
import Testing

@Suite struct SealedBoxTests {
    /// A box built by hand from libsodium's parts (a fixed ephemeral key 0x40…0x5f, nonce =
    /// BLAKE2b-192(epk ‖ pk), crypto_box_easy), not by crypto_box_seal: opening it checks the layout the
    /// wrapper relies on, not just that seal and open agree.
    @Test func opensAKnownBox() throws {
        let recipient = try X25519.KeyPair(privateKey: SecretBytes(hex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")))
        #expect(hexString(recipient.publicKey.bytes) == "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c")
        let sealed = hex("79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a7e64a4a1bc61a90d2a67bb6869c289fa"
                         + "a9adc1ae4ae53684fb283a3948841be14d78de1badb098c18581d6929c2581de890b")
        let opened = try SealedBox.open(sealed, with: recipient)
        #expect(opened.unprotectedBytes == Array("Parley custodian sealed-box vector".utf8))
    }

    @Test func roundTripAndRefusals() throws {
        let custodian = X25519.KeyPair(), stranger = X25519.KeyPair()
        let key = SecretBytes.random(count: 32)
        let sealed = SealedBox.seal(key, to: custodian.publicKey)
        #expect(sealed.count == 32 + SealedBox.overhead)
        #expect(try SealedBox.open(sealed, with: custodian).constantTimeEquals(key))
        // Randomised: sealing twice gives different boxes.
        #expect(SealedBox.seal(key, to: custodian.publicKey) != sealed)
        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(sealed, with: stranger) }
        var altered = sealed
        altered[40] ^= 1
        #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(altered, with: custodian) }
        for length in [0, 1, SealedBox.overhead - 1] {
            #expect(throws: CryptoError.authenticationFailed) { try SealedBox.open(Array(sealed.prefix(length)), with: custodian) }
        }
    }
}
