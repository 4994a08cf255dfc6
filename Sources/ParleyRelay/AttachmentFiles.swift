import Foundation
import Hummingbird
import NIOCore
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// Encrypted attachment blobs: files in `<data>/attachments/<id>`, the id 32 random bytes in hex (so it
/// cannot be guessed), a size fixed when the slot is made, and a TTL. The relay never sees keys: clients
/// encrypt with a fresh secretstream key that travels inside the message.
struct AttachmentFiles: Sendable {
    let directory: String
    let core: RelayCore

    init(core: RelayCore) throws {
        self.core = core
        directory = core.configuration.dataDirectory + "/attachments"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func createSlot(_ request: AttachmentSlotRequest, owner: DeviceAddress) async throws -> AttachmentSlot {
        guard request.size > 0 else { throw RelayError.badRequest("the size must be positive") }
        guard request.size <= core.configuration.maxAttachmentBytes else {
            throw RelayError.payloadTooLarge("attachments are limited to \(core.configuration.maxAttachmentBytes) bytes")
        }
        let id = Hex.encode(SystemRandom().bytes(32))
        let expiresAt = core.clock.nowMilliseconds() + core.configuration.attachmentTTL
        try await core.storage.createAttachment(id: id, owner: owner, size: request.size, expiresAt: expiresAt)
        return AttachmentSlot(id: id, size: request.size, expiresAt: expiresAt)
    }

    func upload(id: String, from body: RequestBody, owner: DeviceAddress) async throws {
        try Self.checkId(id)
        guard let slot = try await core.storage.attachment(id, now: core.clock.nowMilliseconds()) else {
            throw RelayError.notFound("no attachment slot \(id)")
        }
        // Only the device that made the slot fills it; to anyone else it does not exist.
        guard slot.owner == owner else { throw RelayError.notFound("no attachment slot \(id)") }
        guard !slot.complete else { throw RelayError.conflict("attachment \(id) is already uploaded") }
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

    func download(id: String) async throws -> Response {
        try Self.checkId(id)
        guard let slot = try await core.storage.attachment(id, now: core.clock.nowMilliseconds()), slot.complete,
              let data = FileManager.default.contents(atPath: directory + "/" + id) else {
            throw RelayError.notFound("no attachment \(id)")
        }
        return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
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
