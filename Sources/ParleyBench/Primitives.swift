import CSodium

/// The primitives, called straight through libsodium on raw buffers: the baseline every Parley operation is
/// compared with. Nothing here allocates in the measured loops.
typealias Bytes = UnsafeMutablePointer<UInt8>

/// Fixed buffers for the raw baselines, freed (and wiped) together.
final class Scratch {
    private var buffers: [(Bytes, Int)] = []

    /// `count` bytes, random unless `fill` is given.
    func bytes(_ count: Int, fill: UInt8? = nil) -> Bytes {
        let p = Bytes.allocate(capacity: count)
        if let fill { p.initialize(repeating: fill, count: count) } else { randombytes_buf(p, count) }
        buffers.append((p, count))
        return p
    }

    /// A copy of `array`.
    func bytes(_ array: [UInt8]) -> Bytes {
        let p = bytes(array.count, fill: 0)
        p.update(from: array, count: array.count)
        return p
    }

    deinit {
        for (p, n) in buffers {
            sodium_memzero(p, n)
            p.deallocate()
        }
    }
}

enum Raw {
    /// HMAC-SHA256(key, msg) → out (32 bytes).
    @inline(__always)
    static func hmac(_ out: Bytes, key: Bytes, _ keyLength: Int, _ msg: Bytes, _ msgLength: Int) {
        var st = crypto_auth_hmacsha256_state()
        crypto_auth_hmacsha256_init(&st, key, keyLength)
        crypto_auth_hmacsha256_update(&st, msg, UInt64(msgLength))
        crypto_auth_hmacsha256_final(&st, out)
    }

    /// HKDF-SHA256 (RFC 5869): 1 HMAC for extract, then ⌈length/32⌉ HMACs for expand.
    /// `prk` and `t` are 32-byte work buffers.
    static func hkdf(_ out: Bytes, _ length: Int, salt: Bytes, _ saltLength: Int, ikm: Bytes, _ ikmLength: Int,
                     info: Bytes, _ infoLength: Int, prk: Bytes, t: Bytes) {
        hmac(prk, key: salt, saltLength, ikm, ikmLength)
        var written = 0
        var counter: UInt8 = 1
        while written < length {
            var st = crypto_auth_hmacsha256_state()
            crypto_auth_hmacsha256_init(&st, prk, 32)
            if counter > 1 { crypto_auth_hmacsha256_update(&st, t, 32) }
            crypto_auth_hmacsha256_update(&st, info, UInt64(infoLength))
            crypto_auth_hmacsha256_update(&st, &counter, 1)
            crypto_auth_hmacsha256_final(&st, t)
            let take = min(32, length - written)
            (out + written).update(from: t, count: take)
            written += take
            counter += 1
        }
    }

    /// X25519(sk, pk) → out; traps on the all-zero output (never happens with the bench's keys).
    @inline(__always)
    static func x25519(_ out: Bytes, _ sk: Bytes, _ pk: Bytes) {
        let status = crypto_scalarmult_curve25519(out, sk, pk)
        precondition(status == 0)
    }

    /// A fresh X25519 pair: 32 random bytes and the base-point multiplication.
    @inline(__always)
    static func keyPair(_ sk: Bytes, _ pk: Bytes) {
        randombytes_buf(sk, 32)
        crypto_scalarmult_curve25519_base(pk, sk)
    }

    @inline(__always)
    static func seal(_ c: Bytes, _ m: Bytes, _ mLength: Int, ad: Bytes, _ adLength: Int, keyAndNonce kn: Bytes) {
        crypto_aead_xchacha20poly1305_ietf_encrypt(c, nil, m, UInt64(mLength), ad, UInt64(adLength), nil, kn + 32, kn)
    }

    /// Opens `c` (ciphertext ‖ tag); traps when the tag is wrong, which would mean the baseline is not
    /// doing the same work as Parley (libsodium skips decryption on a bad tag).
    @inline(__always)
    static func open(_ m: Bytes, _ c: Bytes, _ cLength: Int, ad: Bytes, _ adLength: Int, keyAndNonce kn: Bytes) {
        let status = crypto_aead_xchacha20poly1305_ietf_decrypt(m, nil, nil, c, UInt64(cLength), ad, UInt64(adLength),
                                                                kn + 32, kn)
        precondition(status == 0, "baseline AEAD tag mismatch")
    }
}
