import CSodium

/// ChaCha20-Poly1305 with the IETF 96-bit nonce (RFC 8439) over libsodium: the AEAD of MLS ciphersuite 3.
/// The nonce is the caller's business (MLS derives it per generation and XORs in a reuse guard).
public enum ChaCha20Poly1305IETF {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// Returns ciphertext ‖ tag.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try requireLength(nonce, nonceLength, "ChaCha20-Poly1305 nonce")
        try requireLength(0..<key.count, keyLength, "ChaCha20-Poly1305 key")
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var written: UInt64 = 0
        key.withUnsafeBytes { k in
            _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                &out, &written, plaintext, UInt64(plaintext.count), associatedData, UInt64(associatedData.count), nil,
                nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return out
    }

    /// Opens ciphertext ‖ tag; throws `.authenticationFailed` and returns nothing when the tag is wrong.
    public static func open(_ ciphertext: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try requireLength(nonce, nonceLength, "ChaCha20-Poly1305 nonce")
        try requireLength(0..<key.count, keyLength, "ChaCha20-Poly1305 key")
        guard ciphertext.count >= tagLength else { throw .authenticationFailed }
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: ciphertext.count - tagLength)
        var written: UInt64 = 0
        let status = key.withUnsafeBytes { k in
            crypto_aead_chacha20poly1305_ietf_decrypt(
                &out, &written, nil, ciphertext, UInt64(ciphertext.count), associatedData, UInt64(associatedData.count),
                nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard status == 0 else {
            wipe(&out)
            throw .authenticationFailed
        }
        return out
    }
}
