import ParleyCrypto
@testable import ParleyProtocol
import Testing

@Suite("Attachments: secretstream blobs and the message content that points to them")
struct AttachmentTests {
    static let chunk = AttachmentCipher.chunkSize

    func pointer(for plaintext: [UInt8], fileName: String = "f.bin") throws -> (AttachmentPointer, [UInt8]) {
        let (blob, key, digest) = try AttachmentCipher.seal(plaintext)
        return (AttachmentPointer(id: String(repeating: "ab", count: 32), key: key, size: UInt64(plaintext.count), digest: digest,
                                  fileName: fileName, contentType: "application/octet-stream"), blob)
    }

    @Test("a pointer that claims an absurd size is refused, not trusted (and the size arithmetic cannot overflow)")
    func absurdClaimedSize() throws {
        let (real, blob) = try pointer(for: [1, 2, 3])
        #expect(AttachmentCipher.sealedSize(of: Int.max) == Int.max)
        #expect(AttachmentCipher.sealedSize(of: Int.max / 2 + 1) == Int.max)
        for claimed in [UInt64.max, UInt64(Int.max), UInt64(Int.max) - 1] {
            let lying = AttachmentPointer(id: real.id, key: real.key, size: claimed, digest: real.digest, fileName: real.fileName,
                                          contentType: real.contentType)
            #expect(throws: ProtocolError.self) { try AttachmentCipher.open(blob, pointer: lying) }
        }
    }

    @Test("files of every size around the chunk boundary round-trip; the blob has the announced size",
          arguments: [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5])
    func roundTrip(size: Int) throws {
        let plaintext = SystemRandom().bytes(size)
        let (pointer, blob) = try pointer(for: plaintext)
        #expect(blob.count == AttachmentCipher.paddedSize(of: size))
        #expect(try AttachmentCipher.open(blob, pointer: pointer) == plaintext)
        if size >= 32 {
            let needle = Array(plaintext.prefix(32))
            #expect(!(0...(blob.count - 32)).contains { Array(blob[$0..<$0 + 32]) == needle }, "no plaintext in the blob")
        }
    }

    @Test("PADMÉ: values worked by hand, buckets are fixed points, the overhead stays under 12 %")
    func padme() {
        // 9 = 1001b: E = 3, 2 bits kept, 1 rounded → 10; 1000: E = 9, 4 bits kept, 6 rounded → 1024.
        #expect([1, 2, 3, 9, 100, 1000, 1025].map(AttachmentPadding.padded) == [1, 2, 3, 10, 104, 1024, 1088])
        #expect(AttachmentPadding.padded(100 << 20) == 100 << 20, "the relay's 100 MiB cap is a bucket")
        #expect(AttachmentCipher.paddedSize(of: 100 * 1024 * 1024 - 64 * 1024) <= 100 << 20, "the largest file still fits the relay's cap")
        for length in [5, 41, 4097, 65_577, 1 << 20 | 1, 33_554_433, 104_000_000] {
            let padded = AttachmentPadding.padded(length)
            #expect(padded >= length && AttachmentPadding.isBucket(padded) && AttachmentPadding.padded(padded) == padded)
            #expect(Double(padded - length) / Double(length) < 0.12)
        }
        #expect(!AttachmentPadding.isBucket(9) && !AttachmentPadding.isBucket(0) && AttachmentPadding.isBucket(10))
        #expect(AttachmentPadding.padded(Int.max) == Int.max, "saturates")
    }

    @Test("the padding is checked (zeros only, the exact bucket), and a blob from before padding still opens")
    func paddingChecks() throws {
        let plaintext = SystemRandom().bytes(Self.chunk + 10)
        let (pointer, blob) = try pointer(for: plaintext)
        let sealed = AttachmentCipher.sealedSize(of: plaintext.count)
        #expect(blob.count > sealed && blob[sealed...].allSatisfy { $0 == 0 })
        func opening(_ bytes: [UInt8]) throws -> [UInt8] {
            try AttachmentCipher.open(bytes, pointer: AttachmentPointer(id: pointer.id, key: pointer.key, size: pointer.size,
                                                                         digest: SHA256.hash(bytes), fileName: "f", contentType: "x"))
        }
        #expect(try opening(Array(blob[..<sealed])) == plaintext, "unpadded (an older sender)")
        var marked = blob
        marked[blob.count - 1] = 1
        #expect(throws: ProtocolError.self) { try opening(marked) }
        #expect(throws: ProtocolError.self) { try opening(blob + [0]) }
        #expect(throws: ProtocolError.self) { try opening(Array(blob.dropLast())) }
    }

    @Test("a flipped byte anywhere, a dropped chunk, a wrong key or a wrong size is refused")
    func tampering() throws {
        let plaintext = SystemRandom().bytes(2 * Self.chunk + 100)
        let (pointer, blob) = try pointer(for: plaintext)
        for index in [0, 23, 24, 1000, Self.chunk + 40, blob.count - 1] {
            var bad = blob
            bad[index] ^= 0x01
            #expect(throws: ProtocolError.self) { try AttachmentCipher.open(bad, pointer: pointer) }
            // Even with a digest that matches the tampered blob, decryption refuses it.
            let rehashed = AttachmentPointer(id: pointer.id, key: pointer.key, size: pointer.size, digest: SHA256.hash(bad),
                                             fileName: pointer.fileName, contentType: pointer.contentType)
            #expect(throws: ProtocolError.self) { try AttachmentCipher.open(bad, pointer: rehashed) }
        }
        // The last chunk dropped: the stream never reaches its FINAL tag.
        let cut = Array(blob.prefix(SecretStream.headerLength + 2 * (Self.chunk + SecretStream.overhead)))
        let cutPointer = AttachmentPointer(id: pointer.id, key: pointer.key, size: UInt64(2 * Self.chunk), digest: SHA256.hash(cut),
                                           fileName: pointer.fileName, contentType: pointer.contentType)
        #expect(throws: ProtocolError.self) { try AttachmentCipher.open(cut, pointer: cutPointer) }
        let wrongKey = AttachmentPointer(id: pointer.id, key: SystemRandom().bytes(32), size: pointer.size, digest: pointer.digest,
                                         fileName: pointer.fileName, contentType: pointer.contentType)
        #expect(throws: ProtocolError.self) { try AttachmentCipher.open(blob, pointer: wrongKey) }
        let wrongSize = AttachmentPointer(id: pointer.id, key: pointer.key, size: pointer.size - 1, digest: pointer.digest,
                                          fileName: pointer.fileName, contentType: pointer.contentType)
        #expect(throws: ProtocolError.self) { try AttachmentCipher.open(blob, pointer: wrongSize) }
    }

    @Test("message contents with a reply, an attachment, both or neither encode and decode exactly")
    func messageContent() throws {
        let (pointer, _) = try pointer(for: [1, 2, 3], fileName: "résumé.pdf")
        let quoted = Content.newMessageId()
        for (replyTo, attachment) in [(quoted, pointer), (quoted, nil), (nil, pointer), (nil, nil)] as [([UInt8]?, AttachmentPointer?)] {
            let content = Content(messageId: Content.newMessageId(), sentAt: 42, destination: "bob@relay",
                                  body: .message(text: "caption ✓", replyTo: replyTo, attachment: attachment))
            let decoded = try Content(decoding: content.encoded)
            #expect(decoded == content)
            #expect(decoded.body.displayText == "caption ✓")
        }
    }

    @Test("unknown message flags and truncated pointers are refused")
    func malformedContent() throws {
        let (pointer, _) = try pointer(for: [9])
        let content = Content(messageId: Content.newMessageId(), sentAt: 1, destination: "b@r",
                              body: .message(text: "x", replyTo: nil, attachment: pointer))
        var bytes = content.encoded
        // version, type, id(16), sentAt(8), destination(2+3), text(4+1) → the flags byte.
        let flags = 1 + 1 + 16 + 8 + 2 + 3 + 4 + 1
        #expect(bytes[flags] == 2)
        bytes[flags] = 6
        #expect(throws: ProtocolError.self) { try Content(decoding: bytes) }
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(content.encoded.dropLast(5))) }
    }
}
