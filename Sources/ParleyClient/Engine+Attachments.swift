import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// Attachments (PROTOCOL.md §12.1): the file is encrypted under a fresh secretstream key, the blob is
/// uploaded into a size-capped slot on this account's relay, and the key, digest and slot id travel inside
/// the end-to-end-encrypted message. Receivers download the blob from the sender's relay.
extension Engine {
    /// The largest file sent as an attachment (the relay has its own cap, 100 MiB by default).
    public static let maxAttachmentBytes = 100 * 1024 * 1024 - 64 * 1024

    /// How much of a blob is accepted from a relay: the padded size its pointer promises, and never more
    /// than 1 GiB, whatever a pointer claims (the blob is held in memory while it is checked).
    static func downloadLimit(_ pointer: AttachmentPointer) -> Int {
        min(AttachmentCipher.paddedSize(of: Int(clamping: pointer.size)), 1 << 30)
    }

    /// Encrypts and uploads the file at `path`, then sends the pointer (with an optional caption) to every
    /// device of `peer`. Nothing is sent if the file cannot be read or the upload fails.
    @discardableResult
    public func sendAttachment(file path: String, to peer: AccountAddress, caption: String? = nil,
                               replyTo: [UInt8]? = nil) async throws -> MessageRecord {
        try refuseIfBlocked(peer)
        let fileName = (path as NSString).lastPathComponent, contentType = Self.contentType(forFileName: path)
        // A caption too long for the message is refused before the file is read or uploaded (the slot id
        // here is longer than any the relay gives, so what passes now passes once the real one is known).
        let stand = AttachmentPointer(id: String(repeating: "0", count: 64), key: [UInt8](repeating: 0, count: 32), size: 0,
                                      digest: [UInt8](repeating: 0, count: 32), fileName: fileName, contentType: contentType)
        try checkFits(Content(messageId: Content.newMessageId(), sentAt: 0, conversation: .direct(peer),
                              body: .message(text: caption ?? "", replyTo: replyTo, attachment: stand)))
        let plaintext = try Self.readAttachment(path)
        let pointer = try await upload(plaintext, fileName: fileName, contentType: contentType)
        return try await send(.message(text: caption ?? "", replyTo: replyTo, attachment: pointer), to: peer)
    }

    /// Encrypts and uploads `plaintext` (padded to its size bucket), returning the pointer to send. The slot
    /// is asked for with the device's token (the account's quota) and filled with the slot's upload secret.
    public func upload(_ plaintext: [UInt8], fileName: String, contentType: String) async throws -> AttachmentPointer {
        var (blob, key, digest) = try AttachmentCipher.seal(plaintext)
        defer { wipe(&key) }
        let slot = try await authorised { try await relay.createAttachment(size: blob.count, token: $0) }
        try await relay.uploadAttachment(id: slot.id, bytes: blob, uploadSecret: slot.uploadSecret)
        return AttachmentPointer(id: slot.id, key: key, size: UInt64(plaintext.count), digest: digest,
                                 fileName: fileName, contentType: contentType)
    }

    /// The decrypted attachment of `record`, downloaded from the sender's relay and checked (digest, every
    /// chunk, size) before anything is returned.
    public func attachmentBytes(of record: MessageRecord) async throws -> [UInt8] {
        guard let pointer = record.attachment else { throw ClientError.noAttachment }
        let blob = try await peerRelay(for: try record.sender.account).downloadAttachment(id: pointer.id, maxBytes: Self.downloadLimit(pointer))
        return try AttachmentCipher.open(blob, pointer: pointer)
    }

    /// Downloads, checks and decrypts the attachment of `record` into `path` (mode 0600; written only once
    /// downloaded and checked, so a failed download leaves nothing behind). An existing file at `path` is
    /// replaced only when `replacing` is set; a directory never is (ClientError.file either way).
    public func saveAttachment(of record: MessageRecord, to path: String, replacing: Bool = false) async throws {
        guard record.attachment != nil else { throw ClientError.noAttachment }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw ClientError.file("\(path) is a directory") }
            if !replacing { throw ClientError.file("\(path) already exists; nothing was written") }
        }
        var plaintext = try await attachmentBytes(of: record)
        defer { wipe(&plaintext) }
        if !replacing {
            // Never replaces anything, not even a file that appeared during the download.
            try Self.writeNew(plaintext, at: path)
            return
        }
        // Replacing: a complete temporary file, then rename(2), which replaces a file atomically and
        // refuses a directory.
        let temporary = path + ".part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Self.writeNew(plaintext, at: temporary)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ClientError.file("cannot write \(path): \(reason)")
        }
    }

    /// Creates `path` (it must not exist) holding `bytes`: see `NewFile`.
    private static func writeNew(_ bytes: [UInt8], at path: String) throws(ClientError) {
        guard let code = NewFile.create(at: path, holding: bytes) else { return }
        throw ClientError.file("cannot write \(path): " + (code == EEXIST ? "it already exists; nothing was written" : String(cString: strerror(code))))
    }

    /// Where an attachment named `fileName` by its sender is saved: `requested` (a directory in it gets the
    /// file name), or the file name in the current directory. Only the name's last component is used,
    /// never a path the sender chose, and control characters and bidirectional overrides (which could
    /// drive the terminal or disguise the name when it is printed) become "_"; leading dots are dropped
    /// (no hidden files).
    public static func attachmentDestination(fileName: String, requested: String?, fallback: String) -> String {
        let last = (fileName as NSString).lastPathComponent
        var name = PeerText.forFileName(last)
        // No hidden files from a sender: ".bash_profile" saved in a home directory would be obeyed.
        while name.hasPrefix(".") { name.removeFirst() }
        if name.isEmpty || name == "/" { name = fallback }
        guard let requested else { return name }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: requested, isDirectory: &isDirectory), isDirectory.boolValue {
            return (requested as NSString).appendingPathComponent(name)
        }
        return requested
    }

    static func readAttachment(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ClientError.file("no such file: \(path)") }
        guard !isDirectory.boolValue else {
            throw ClientError.file("\(path) is a directory; an attachment is one file (pack a directory with tar or zip first)")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ClientError.file("cannot read \(path)") }
        guard data.count <= maxAttachmentBytes else {
            throw ClientError.file("\(path) is \(data.count) bytes; attachments are limited to \(maxAttachmentBytes)")
        }
        return [UInt8](data)
    }

    /// A MIME type from the file name's extension, for the receiver's display only.
    public static func contentType(forFileName name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "txt", "log", "md": "text/plain"
        case "json": "application/json"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gif": "image/gif"
        case "webp": "image/webp"
        case "pdf": "application/pdf"
        case "zip": "application/zip"
        case "gz", "tgz": "application/gzip"
        case "mp3": "audio/mpeg"
        case "ogg", "oga": "audio/ogg"
        case "mp4": "video/mp4"
        default: "application/octet-stream"
        }
    }
}
