import CSodium

/// HMAC-SHA256 (RFC 2104) over libsodium's `crypto_auth_hmacsha256_*`, which accepts keys of any length.
public enum HMACSHA256 {
    public static let outputLength = 32

    public static func authenticate(_ message: [UInt8], key: SecretBytes) -> [UInt8] {
        key.withUnsafeBytes { k in authenticate(message, key: k) }
    }

    public static func authenticate(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { k in authenticate(message, key: k) }
    }

    /// Writes the tag straight into `output` (32 bytes); the hot path of the symmetric ratchet uses this to
    /// avoid an intermediate array.
    public static func authenticate(_ message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer,
                                    into output: UnsafeMutableRawBufferPointer) {
        Sodium.ready()
        precondition(output.count >= outputLength)
        var state = crypto_auth_hmacsha256_state()
        crypto_auth_hmacsha256_init(&state, key.bytePointer, key.count)
        crypto_auth_hmacsha256_update(&state, message.bytePointer, UInt64(message.count))
        crypto_auth_hmacsha256_final(&state, output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
    }

    static func authenticate(_ message: [UInt8], key: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: outputLength)
        message.withUnsafeBytes { m in
            out.withUnsafeMutableBytes { o in authenticate(m, key: key, into: o) }
        }
        return out
    }

    /// Constant-time tag check.
    public static func verify(_ tag: [UInt8], message: [UInt8], key: SecretBytes) -> Bool {
        var expected = authenticate(message, key: key)
        defer { wipe(&expected) }
        return constantTimeEquals(tag, expected)
    }
}

/// HKDF-SHA256 (RFC 5869), built on HMAC-SHA256 because libsodium 1.0.18 has no HKDF.
public enum HKDFSHA256 {
    /// HKDF-Extract: PRK = HMAC(salt, IKM). An empty salt means 32 zero bytes, as the RFC says.
    public static func extract(salt: [UInt8], inputKeyMaterial ikm: SecretBytes) -> SecretBytes {
        let effectiveSalt = salt.isEmpty ? [UInt8](repeating: 0, count: 32) : salt
        return SecretBytes(count: 32) { prk in
            effectiveSalt.withUnsafeBytes { s in
                ikm.withUnsafeBytes { i in HMACSHA256.authenticate(i, key: s, into: prk) }
            }
        }
    }

    /// Extract with a secret salt (the Double Ratchet's root key is the salt of KDF_RK).
    public static func extract(salt: SecretBytes, inputKeyMaterial ikm: SecretBytes) -> SecretBytes {
        SecretBytes(count: 32) { prk in
            salt.withUnsafeBytes { s in
                ikm.withUnsafeBytes { i in HMACSHA256.authenticate(i, key: s, into: prk) }
            }
        }
    }

    /// HKDF-Expand: T(1) ‖ T(2) ‖ … truncated to `length` (at most 255 × 32 bytes).
    public static func expand(pseudoRandomKey prk: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        precondition(length > 0 && length <= 255 * 32, "HKDF-SHA256 output length out of range")
        return SecretBytes(count: length) { out in
            prk.withUnsafeBytes { key in
                var block = [UInt8](repeating: 0, count: 32)
                var input = [UInt8]()
                input.reserveCapacity(32 + info.count + 1)
                var written = 0
                var counter: UInt8 = 1
                while written < length {
                    input.removeAll(keepingCapacity: true)
                    if counter > 1 { input.append(contentsOf: block) }
                    input.append(contentsOf: info)
                    input.append(counter)
                    input.withUnsafeBytes { m in
                        block.withUnsafeMutableBytes { b in HMACSHA256.authenticate(m, key: key, into: b) }
                    }
                    let take = Swift.min(32, length - written)
                    block.withUnsafeBytes { b in
                        UnsafeMutableRawBufferPointer(rebasing: out[written..<(written + take)])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: b[0..<take]))
                    }
                    written += take
                    counter &+= 1
                }
                wipe(&block)
                wipe(&input)
            }
        }
    }

    /// Extract then expand.
    public static func deriveKey(inputKeyMaterial ikm: SecretBytes, salt: [UInt8], info: [UInt8], length: Int) -> SecretBytes {
        expand(pseudoRandomKey: extract(salt: salt, inputKeyMaterial: ikm), info: info, length: length)
    }

    public static func deriveKey(inputKeyMaterial ikm: SecretBytes, salt: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        expand(pseudoRandomKey: extract(salt: salt, inputKeyMaterial: ikm), info: info, length: length)
    }
}
