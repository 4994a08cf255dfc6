import CSodium

/// XChaCha20-Poly1305-IETF AEAD (draft-irtf-cfrg-xchacha) over libsodium.
public enum XChaCha20Poly1305 {
    public static let keyLength = 32
    public static let nonceLength = 24
    public static let tagLength = 16

    /// Returns ciphertext ‖ tag.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try requireLength(nonce, nonceLength, "XChaCha20-Poly1305 nonce")
        try requireLength(0..<key.count, keyLength, "XChaCha20-Poly1305 key")
        return key.withUnsafeBytes { k in
            nonce.withUnsafeBytes { n in seal(plaintext, associatedData: associatedData, nonce: n, key: k) }
        }
    }

    /// Opens ciphertext ‖ tag; throws `.authenticationFailed` and returns nothing when the tag is wrong.
    public static func open(_ ciphertext: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try requireLength(nonce, nonceLength, "XChaCha20-Poly1305 nonce")
        try requireLength(0..<key.count, keyLength, "XChaCha20-Poly1305 key")
        return try key.withUnsafeBytes { (k) throws(CryptoError) -> [UInt8] in
            var result: Result<[UInt8], CryptoError> = .failure(.authenticationFailed)
            nonce.withUnsafeBytes { n in
                result = Result { () throws(CryptoError) in try open(ciphertext, associatedData: associatedData, nonce: n, key: k) }
            }
            return try result.get()
        }
    }

    /// Key and nonce given as one 56-byte buffer (key ‖ nonce), as the ratchet's message-key expansion
    /// produces them.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], keyAndNonce: SecretBytes) -> [UInt8] {
        precondition(keyAndNonce.count == keyLength + nonceLength)
        return keyAndNonce.withUnsafeBytes { kn in
            seal(plaintext, associatedData: associatedData,
                 nonce: UnsafeRawBufferPointer(rebasing: kn[keyLength...]), key: UnsafeRawBufferPointer(rebasing: kn[..<keyLength]))
        }
    }

    public static func open(_ ciphertext: [UInt8], associatedData: [UInt8], keyAndNonce: SecretBytes) throws(CryptoError) -> [UInt8] {
        precondition(keyAndNonce.count == keyLength + nonceLength)
        return try keyAndNonce.withUnsafeBytes { (kn) throws(CryptoError) -> [UInt8] in
            try open(ciphertext, associatedData: associatedData,
                     nonce: UnsafeRawBufferPointer(rebasing: kn[keyLength...]), key: UnsafeRawBufferPointer(rebasing: kn[..<keyLength]))
        }
    }

    static func seal(_ plaintext: [UInt8], associatedData: [UInt8], nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var written: UInt64 = 0
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            &out, &written, plaintext, UInt64(plaintext.count), associatedData, UInt64(associatedData.count), nil,
            nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
        return out
    }

    static func open(_ ciphertext: [UInt8], associatedData: [UInt8], nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer) throws(CryptoError) -> [UInt8] {
        Sodium.ready()
        guard ciphertext.count >= tagLength else { throw .authenticationFailed }
        var out = [UInt8](repeating: 0, count: ciphertext.count - tagLength)
        var written: UInt64 = 0
        let status = crypto_aead_xchacha20poly1305_ietf_decrypt(
            &out, &written, nil, ciphertext, UInt64(ciphertext.count), associatedData, UInt64(associatedData.count),
            nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.baseAddress!.assumingMemoryBound(to: UInt8.self))
        guard status == 0 else { throw .authenticationFailed }
        return out
    }
}
