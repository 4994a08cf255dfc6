import ParleyCrypto

/// Where an attachment lies on the relay and how to open it (PROTOCOL.md §12.1). It travels inside the
/// encrypted content only: the relay holds the blob under `id` but never the key.
public struct AttachmentPointer: Equatable, Sendable {
    /// The relay's unguessable id of the uploaded blob.
    public let id: String
    /// A fresh secretstream key for this attachment alone.
    public let key: [UInt8]
    /// The plaintext size in bytes.
    public let size: UInt64
    /// SHA-256 of the blob exactly as uploaded, checked before anything is decrypted.
    public let digest: [UInt8]
    public let fileName: String
    public let contentType: String

    public init(id: String, key: [UInt8], size: UInt64, digest: [UInt8], fileName: String, contentType: String) {
        self.id = id
        self.key = key
        self.size = size
        self.digest = digest
        self.fileName = fileName
        self.contentType = contentType
    }

    public func encode(into w: inout ByteWriter) {
        w.bytes16(Array(id.utf8))
        w.raw(key)
        w.u64(size)
        w.raw(digest)
        w.bytes16(Array(fileName.utf8))
        w.bytes16(Array(contentType.utf8))
    }

    public init(from r: inout ByteReader) throws(ProtocolError) {
        func utf8(_ bytes: [UInt8], _ field: String) throws(ProtocolError) -> String {
            guard let value = String(validating: bytes, as: UTF8.self) else { throw .malformed("attachment: \(field) is not UTF-8") }
            return value
        }
        id = try utf8(try r.bytes16(), "id")
        key = try r.raw(SecretStream.keyLength)
        size = try r.u64()
        digest = try r.raw(SHA256.outputLength)
        fileName = try utf8(try r.bytes16(), "file name")
        contentType = try utf8(try r.bytes16(), "content type")
    }
}

/// Blob sizes as the relay sees them: PADMÉ (Nikitin et al., "Reducing metadata leakage from encrypted
/// files and communication with PURBs", 2019). A length L whose highest bit is bit E keeps only its top
/// ⌊log₂ E⌋ + 1 bits, the rest rounded up: at most 12 % more bytes (under 3 % above 1 MiB), and a size
/// reveals O(log log L) bits instead of log L. The relay accepts only sizes this rule yields.
public enum AttachmentPadding {
    /// The smallest bucket size at or above `length` (saturating at `Int.max`).
    public static func padded(_ length: Int) -> Int {
        guard length > 2 else { return max(length, 0) }
        let exponent = Int.bitWidth - 1 - length.leadingZeroBitCount          // ⌊log₂ L⌋
        let kept = Int.bitWidth - exponent.leadingZeroBitCount                 // ⌊log₂ E⌋ + 1
        let mask = (1 << (exponent - kept)) - 1
        guard length <= Int.max - mask else { return Int.max }
        return (length + mask) & ~mask
    }

    /// Whether the relay accepts `length` as a blob size.
    public static func isBucket(_ length: Int) -> Bool { length > 0 && padded(length) == length }
}

/// Encryption of attachment blobs: libsodium secretstream under a fresh key, in chunks of `chunkSize`
/// plaintext bytes, the last tagged FINAL (so truncation, reordering and splicing all fail). Blob =
/// header(24) ‖ chunk ciphertexts (chunk + 17 bytes each) ‖ zero bytes up to the PADMÉ bucket (so the
/// relay learns the size only to within its bucket). An empty file is one empty FINAL chunk.
public enum AttachmentCipher {
    public static let chunkSize = 64 * 1024

    /// The blob to upload, the key, and the digest of the blob.
    public static func seal(_ plaintext: [UInt8]) throws(ProtocolError) -> (blob: [UInt8], key: [UInt8], digest: [UInt8]) {
        let key = SecretBytes.random(count: SecretStream.keyLength)
        var encryptor = try ProtocolError.wrap { () throws(CryptoError) in try SecretStream.Encryptor(key: key) }
        var blob = encryptor.header
        blob.reserveCapacity(paddedSize(of: plaintext.count))
        var offset = 0
        repeat {
            let end = min(plaintext.count, offset + chunkSize)
            blob += encryptor.push(Array(plaintext[offset..<end]), final: end == plaintext.count)
            offset = end
        } while offset < plaintext.count
        blob += [UInt8](repeating: 0, count: paddedSize(of: plaintext.count) - blob.count)
        return (blob, key.unprotectedBytes, SHA256.hash(blob))
    }

    /// The length of the blob as uploaded: the sealed size rounded up to its PADMÉ bucket.
    public static func paddedSize(of size: Int) -> Int { AttachmentPadding.padded(sealedSize(of: size)) }

    /// The size of the blob `seal` makes of `size` plaintext bytes (the relay slot is reserved first).
    /// Saturates at Int.max: a pointer from a peer may claim any size.
    public static func sealedSize(of size: Int) -> Int {
        guard size >= 0, size <= Int.max / 2 else { return Int.max }
        let chunks = max(1, (size + chunkSize - 1) / chunkSize)
        return SecretStream.headerLength + size + chunks * SecretStream.overhead
    }

    /// The plaintext, after checking the blob's digest, its length, every chunk, the final tag, the size and
    /// that the padding is zeros. A blob without padding (from a client before padding) is accepted too:
    /// the pointer's size tells the two apart.
    public static func open(_ blob: [UInt8], pointer: AttachmentPointer) throws(ProtocolError) -> [UInt8] {
        guard constantTimeEquals(SHA256.hash(blob), pointer.digest) else { throw .malformed("attachment: digest mismatch") }
        let sealed = sealedSize(of: Int(clamping: pointer.size))
        guard blob.count == sealed || blob.count == AttachmentPadding.padded(sealed) else { throw .malformed("attachment: wrong size") }
        guard blob[sealed...].allSatisfy({ $0 == 0 }) else { throw .malformed("attachment: padding is not zeros") }
        let blob = blob[..<sealed]
        let key = SecretBytes(pointer.key)
        var decryptor = try ProtocolError.wrap { () throws(CryptoError) in
            try SecretStream.Decryptor(key: key, header: Array(blob[0..<SecretStream.headerLength]))
        }
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(Int(pointer.size))
        var offset = SecretStream.headerLength
        while offset < blob.count {
            let end = min(blob.count, offset + chunkSize + SecretStream.overhead)
            let chunk = Array(blob[offset..<end])
            plaintext += try ProtocolError.wrap { () throws(CryptoError) in try decryptor.pull(chunk) }
            offset = end
        }
        guard decryptor.finished, plaintext.count == pointer.size else { throw .malformed("attachment: truncated") }
        return plaintext
    }
}
