import Foundation
import Hummingbird
import Logging
import NIOCore
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// Encrypted attachment blobs: files in `<data>/attachments/<id>`, the id 32 random bytes in hex (so it
/// cannot be guessed), a size fixed when the slot is made, and a TTL. The relay never sees keys: clients
/// encrypt with a fresh secretstream key that travels inside the message. Nor does it keep who uploaded a
/// blob: a slot is filled with its upload secret, and quotas are counted per account apart from the blobs.
struct AttachmentFiles: Sendable {
    let directory: String
    let core: RelayCore

    init(core: RelayCore) throws {
        self.core = core
        directory = core.configuration.dataDirectory + "/attachments"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Makes an empty slot of `request.size` bytes (a PADMÉ bucket size, PROTOCOL.md §12.1), counted against
    /// `account`'s daily quota. The answer's upload secret is what fills the slot; the relay keeps only its
    /// hash, and nothing that ties the slot to `account`.
    /// A size past the limit is the request's fault (413) and is refused before the free space is asked.
    func createSlot(_ request: AttachmentSlotRequest, account: String, logger: Logger) async throws -> AttachmentSlot {
        guard request.size > 0 else { throw RelayError.badRequest("the size must be positive") }
        guard request.size <= core.configuration.maxAttachmentBytes else {
            throw RelayError.payloadTooLarge("attachments are limited to \(core.configuration.maxAttachmentBytes) bytes")
        }
        guard AttachmentPadding.isBucket(request.size) else {
            throw RelayError.badRequest("\(request.size) is not a padded size (PROTOCOL.md §12.1); the next one is \(AttachmentPadding.padded(request.size))")
        }
        try await core.requireRoom(for: UInt64(request.size), logger: logger)
        let now = core.clock.nowMilliseconds()
        guard try await core.storage.chargeAttachmentQuota(account: account, window: now / AttachmentQuota.period, bytes: request.size,
                                                            limits: core.configuration.attachmentQuota) else {
            core.metrics.refused(by: "attachment_quota")
            throw RelayError.rateLimited
        }
        let id = Hex.encode(SystemRandom().bytes(32))
        var secret = SystemRandom().bytes(32)
        defer { wipe(&secret) }
        let text = Hex.encode(secret)
        let expiresAt = now + core.configuration.attachmentTTL
        try await core.storage.createAttachment(id: id, uploadSecretHash: SHA256.hash(Array(text.utf8)), size: request.size, expiresAt: expiresAt)
        return AttachmentSlot(id: id, size: request.size, expiresAt: expiresAt, uploadSecret: text)
    }

    /// Fills slot `id` with the request body, which must be exactly the slot's size. `secret` is the
    /// slot's upload secret; without the right one the slot does not exist (404), as for an unknown id.
    func upload(id: String, from body: RequestBody, secret: String?, logger: Logger) async throws {
        try Self.checkId(id)
        guard let secret else { throw RelayError.unauthorized("missing \(RelayAPI.uploadSecretHeader) header") }
        guard let slot = try await core.storage.attachment(id, now: core.clock.nowMilliseconds()),
              let expected = slot.uploadSecretHash, constantTimeEquals(SHA256.hash(Array(secret.utf8)), expected) else {
            throw RelayError.notFound("no attachment slot \(id)")
        }
        guard !slot.complete else { throw RelayError.conflict("attachment \(id) is already uploaded") }
        try await core.requireRoom(for: UInt64(slot.size), logger: logger)
        let path = directory + "/" + id
        // Each upload writes a file of its own; the first to finish links it into place (link(2) refuses
        // an existing name), so two concurrent uploads to one slot cannot mix or replace each other.
        let temporary = path + "." + Hex.encode(SystemRandom().bytes(8)) + ".part"
        FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: temporary) else { throw RelayError.unavailable("cannot store attachment") }
        var written = 0
        do {
            for try await buffer in body {
                written += buffer.readableBytes
                guard written <= slot.size else { throw RelayError.payloadTooLarge("more bytes than the slot's \(slot.size)") }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
            guard written == slot.size else { throw RelayError.badRequest("expected \(slot.size) bytes, got \(written)") }
            try handle.synchronize()
            try handle.close()
            guard link(temporary, path) == 0 else {
                throw errno == EEXIST ? RelayError.conflict("attachment \(id) is already uploaded") : RelayError.unavailable("cannot store attachment")
            }
            try? FileManager.default.removeItem(atPath: temporary)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        try await core.storage.markAttachmentComplete(id)
    }

    /// The blob, streamed from its file: `AttachmentStream` reads a chunk only once the previous one is
    /// written to the connection, so a slow reader holds one chunk in memory, not the blob.
    func download(id: String) async throws -> Response {
        try Self.checkId(id)
        guard let slot = try await core.storage.attachment(id, now: core.clock.nowMilliseconds()), slot.complete,
              let file = AttachmentStream(path: directory + "/" + id) else {
            throw RelayError.notFound("no attachment \(id)")
        }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"],
                        body: ResponseBody(contentLength: file.length) { writer in try await file.write(to: &writer) })
    }

    func purgeExpired() async throws {
        for id in try await core.storage.expiredAttachments(now: core.clock.nowMilliseconds()) {
            try? FileManager.default.removeItem(atPath: directory + "/" + id)
            try await core.storage.deleteAttachment(id)
        }
    }

    private static func checkId(_ id: String) throws {
        guard id.count == 64, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw RelayError.notFound("no attachment \(id)") }
    }
}
