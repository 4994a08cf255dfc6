import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// Searching the history and fetching the files messages carry.
extension Operations {
    /// The most results a search returns (and its default).
    public static let searchLimits = 1...10_000
    public static let defaultSearchLimit = 50

    /// Case-insensitive substring search, newest first; only the conversation with `contact` if given.
    public func search(_ query: String, with contact: AccountAddress? = nil, limit: Int = defaultSearchLimit) throws -> [HistoryEntry] {
        try searchRecords(query, with: contact, limit: limit).map(HistoryEntry.init)
    }

    /// The search itself, as the stored records (the chat window opens a result at its message, by store id).
    public func searchRecords(_ query: String, with contact: AccountAddress? = nil, limit: Int = defaultSearchLimit) throws -> [MessageRecord] {
        guard !query.isEmpty else { throw OperationError.invalidInput("the search text is empty") }
        guard Self.searchLimits.contains(limit) else {
            throw OperationError.invalidInput("the limit must be between \(Self.searchLimits.lowerBound) and \(Self.searchLimits.upperBound)")
        }
        guard let contact else { return try engine.search(query, limit: limit) }
        guard try engine.contact(contact) != nil else { throw ClientError.unknownContact(contact) }
        return try engine.search(query, in: .direct(contact), limit: limit)
    }

    /// The message `id` of the conversation with `contact` (sent by them, or by this account), and its file.
    public func attachment(from contact: AccountAddress, id: [UInt8]) async throws -> (record: MessageRecord, file: AttachmentPointer) {
        guard let record = try engine.message(sentBy: contact, clientMessageId: id)
            ?? engine.message(sentBy: engine.ownAddress, clientMessageId: id) else {
            throw OperationError.refused("no message \(Hex.encode(id)) from \(contact)")
        }
        guard let file = record.attachment else { throw ClientError.noAttachment }
        return (record, file)
    }

    /// Downloads, checks and decrypts the file of a message into `path` (a file, or a directory to keep the
    /// sender's file name in; default: that name in the current directory). An existing file is replaced
    /// only with `replacing`.
    public func saveAttachment(from contact: AccountAddress, id: [UInt8], to path: String?, replacing: Bool = false) async throws -> AttachmentResult {
        let (record, file) = try await attachment(from: contact, id: id)
        let destination = Engine.attachmentDestination(fileName: file.fileName, requested: path, fallback: "attachment-\(Hex.encode(id))")
        if !replacing, FileManager.default.fileExists(atPath: destination) { throw OperationError.fileExists(destination) }
        try await engine.saveAttachment(of: record, to: destination, replacing: replacing)
        return AttachmentResult(id: Hex.encode(id), filename: file.fileName, contentType: file.contentType, size: file.size,
                                file: destination, data: nil)
    }

    /// The decrypted file of a message, as base64 in the result.
    public func attachmentData(from contact: AccountAddress, id: [UInt8]) async throws -> AttachmentResult {
        let (record, file) = try await attachment(from: contact, id: id)
        let bytes = try await engine.attachmentBytes(of: record)
        return AttachmentResult(id: Hex.encode(id), filename: file.fileName, contentType: file.contentType, size: file.size,
                                file: nil, data: Data(bytes).base64EncodedString())
    }
}
