import CSodium

/// libsodium's sealed box (`crypto_box_seal`): anonymous public-key encryption to an X25519 key. The
/// sender's key is ephemeral, so only the holder of the recipient's private key can open it, and nobody
/// (not even the sender) can tell who sealed it. Used to seal a backup key to an organisation's custodian.
///
/// Layout: `ephemeral public key(32) ‖ crypto_box(message)` (MAC 16), nonce = BLAKE2b-192(epk ‖ pk).
public enum SealedBox {
    /// Bytes a sealed box adds to its message.
    public static let overhead = crypto_box_sealbytes()

    /// `message` sealed to `recipient`.
    public static func seal(_ message: SecretBytes, to recipient: X25519.PublicKey) -> [UInt8] {
        Sodium.ready()
        var sealed = [UInt8](repeating: 0, count: message.count + overhead)
        let status = message.withUnsafeBytes { m in
            crypto_box_seal(&sealed, m.bytePointer, UInt64(m.count), recipient.bytes)
        }
        // Only fails for an allocation failure inside libsodium; never for any key.
        precondition(status == 0, "crypto_box_seal failed")
        return sealed
    }

    /// Opens `sealed` with `recipient`'s key pair; `authenticationFailed` for a box sealed to another key,
    /// altered, or too short to be one.
    public static func open(_ sealed: [UInt8], with recipient: X25519.KeyPair) throws(CryptoError) -> SecretBytes {
        Sodium.ready()
        guard sealed.count >= overhead else { throw .authenticationFailed }
        var failed = false
        let message = SecretBytes(count: sealed.count - overhead) { out in
            recipient.privateKey.withUnsafeBytes { sk in
                failed = crypto_box_seal_open(out.bytePointer, sealed, UInt64(sealed.count),
                                              recipient.publicKey.bytes, sk.bytePointer) != 0
            }
        }
        if failed { throw .authenticationFailed }
        return message
    }
}
