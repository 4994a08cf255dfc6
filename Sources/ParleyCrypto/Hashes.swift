import CSodium

public enum SHA256 {
    public static let outputLength = 32
    public static func hash(_ message: [UInt8]) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: outputLength)
        crypto_hash_sha256(&out, message, UInt64(message.count))
        return out
    }
}

public enum SHA512 {
    public static let outputLength = 64
    public static func hash(_ message: [UInt8]) -> [UInt8] {
        Sodium.ready()
        var out = [UInt8](repeating: 0, count: outputLength)
        crypto_hash_sha512(&out, message, UInt64(message.count))
        return out
    }
}

/// BLAKE2b (RFC 7693) with an optional key, output 16…64 bytes.
public enum BLAKE2b {
    public static func hash(_ message: [UInt8], key: [UInt8] = [], outputLength: Int = 32) throws(CryptoError) -> [UInt8] {
        Sodium.ready()
        guard (Int(crypto_generichash_BYTES_MIN)...Int(crypto_generichash_BYTES_MAX)).contains(outputLength) else {
            throw .invalidLength(what: "BLAKE2b output", expected: 32, actual: outputLength)
        }
        guard key.count <= Int(crypto_generichash_KEYBYTES_MAX) else {
            throw .invalidLength(what: "BLAKE2b key", expected: 32, actual: key.count)
        }
        var out = [UInt8](repeating: 0, count: outputLength)
        crypto_generichash(&out, outputLength, message, UInt64(message.count), key.isEmpty ? nil : key, key.count)
        return out
    }

    /// Keyed with a secret (store lookup columns, for example).
    public static func hash(_ message: [UInt8], key: SecretBytes, outputLength: Int = 32) throws(CryptoError) -> [UInt8] {
        Sodium.ready()
        guard (Int(crypto_generichash_BYTES_MIN)...Int(crypto_generichash_BYTES_MAX)).contains(outputLength),
              (Int(crypto_generichash_KEYBYTES_MIN)...Int(crypto_generichash_KEYBYTES_MAX)).contains(key.count) else {
            throw .invalidLength(what: "BLAKE2b key or output", expected: 32, actual: key.count)
        }
        var out = [UInt8](repeating: 0, count: outputLength)
        key.withUnsafeBytes { k in
            _ = crypto_generichash(&out, outputLength, message, UInt64(message.count), k.baseAddress, k.count)
        }
        return out
    }
}
