import CSodium

/// libsodium's `crypto_secretstream_xchacha20poly1305`: a chunked authenticated stream whose last chunk
/// is tagged FINAL, so truncation, reordering and splicing are all detected. Used for backups and
/// attachments.
public enum SecretStream {
    public static let keyLength = Int(crypto_secretstream_xchacha20poly1305_KEYBYTES)
    public static let headerLength = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    public static let overhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)

    public struct Encryptor {
        private var state = crypto_secretstream_xchacha20poly1305_state()
        public let header: [UInt8]

        public init(key: SecretBytes) throws(CryptoError) {
            Sodium.ready()
            try requireLength(0..<key.count, SecretStream.keyLength, "secretstream key")
            var header = [UInt8](repeating: 0, count: SecretStream.headerLength)
            var state = crypto_secretstream_xchacha20poly1305_state()
            key.withUnsafeBytes { k in _ = crypto_secretstream_xchacha20poly1305_init_push(&state, &header, k.bytePointer) }
            self.state = state
            self.header = header
        }

        /// Encrypts one chunk; `final` marks the end of the stream.
        public mutating func push(_ chunk: [UInt8], final: Bool) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: chunk.count + SecretStream.overhead)
            let tag = UInt8(final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            crypto_secretstream_xchacha20poly1305_push(&state, &out, nil, chunk, UInt64(chunk.count), nil, 0, tag)
            return out
        }
    }

    public struct Decryptor {
        private var state = crypto_secretstream_xchacha20poly1305_state()
        public private(set) var finished = false

        public init(key: SecretBytes, header: [UInt8]) throws(CryptoError) {
            Sodium.ready()
            try requireLength(0..<key.count, SecretStream.keyLength, "secretstream key")
            try requireLength(header, SecretStream.headerLength, "secretstream header")
            var state = crypto_secretstream_xchacha20poly1305_state()
            let status = key.withUnsafeBytes { k in crypto_secretstream_xchacha20poly1305_init_pull(&state, header, k.bytePointer) }
            guard status == 0 else { throw .authenticationFailed }
            self.state = state
        }

        /// Decrypts one chunk; throws on tampering or on data after the final chunk.
        public mutating func pull(_ chunk: [UInt8]) throws(CryptoError) -> [UInt8] {
            guard !finished, chunk.count >= SecretStream.overhead else { throw .authenticationFailed }
            var out = [UInt8](repeating: 0, count: chunk.count - SecretStream.overhead)
            var tag: UInt8 = 0
            guard crypto_secretstream_xchacha20poly1305_pull(&state, &out, nil, &tag, chunk, UInt64(chunk.count), nil, 0) == 0 else {
                throw .authenticationFailed
            }
            if tag == UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL) { finished = true }
            return out
        }
    }
}
