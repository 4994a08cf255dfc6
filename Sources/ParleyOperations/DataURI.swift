import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol

/// An attachment given inline as an RFC 2397 `data:` URI, as signal-cli accepts it:
/// `data:<MIME-TYPE>[;filename=<NAME>][;base64],<DATA>`. Its size is checked from the URI's length before
/// anything is decoded, and it is written to a private temporary file that the send reads and removes.
public struct DataURI: Sendable, Equatable {
    public let mediaType: String
    public let fileName: String
    public let bytes: [UInt8]

    public static func isDataURI(_ text: String) -> Bool { text.utf8.starts(with: "data:".utf8) }

    public static func parse(_ text: String, maxBytes: Int = Engine.maxAttachmentBytes) throws(OperationError) -> DataURI {
        guard isDataURI(text), let comma = text.firstIndex(of: ",") else {
            throw .invalidInput("the attachment is not a data: URI (data:TYPE[;filename=NAME][;base64],DATA)")
        }
        let header = text[text.index(text.startIndex, offsetBy: 5)..<comma].split(separator: ";", omittingEmptySubsequences: false)
        let payload = text[text.index(after: comma)...]
        let base64 = header.last == "base64"
        // Base64 holds 3 bytes in 4 characters; percent-encoding at least 1 in 1: the bound is known unread.
        let bound = base64 ? payload.utf8.count / 4 * 3 : payload.utf8.count
        guard bound <= maxBytes else { throw .invalidInput("the data: attachment is larger than \(maxBytes) bytes") }
        let mediaType = header.first.map(String.init).flatMap { $0.isEmpty ? nil : $0 } ?? "text/plain"
        var fileName: String?
        for parameter in header.dropFirst() where parameter.hasPrefix("filename=") {
            fileName = String(parameter.dropFirst(9)).removingPercentEncoding
        }
        let bytes: [UInt8]
        if base64 {
            guard let data = Data(base64Encoded: String(payload)) else { throw .invalidInput("the data: attachment is not valid base64") }
            bytes = [UInt8](data)
        } else {
            guard let decoded = String(payload).removingPercentEncoding else { throw .invalidInput("the data: attachment is not valid percent-encoding") }
            bytes = Array(decoded.utf8)
        }
        return DataURI(mediaType: mediaType, fileName: safeName(fileName, mediaType: mediaType), bytes: bytes)
    }

    /// A file name a peer's client can show and save: the last path component, no leading dot, no
    /// control characters; else `attachment` with an extension for the media type.
    static func safeName(_ given: String?, mediaType: String) -> String {
        let base = (given ?? "").split(separator: "/").last.map(String.init) ?? ""
        let cleaned = String(base.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F && !PeerText.needsJSONEscape($0) }.map(Character.init))
        let trimmed = cleaned.drop { $0 == "." }
        if !trimmed.isEmpty, trimmed.utf8.count <= 200 { return String(trimmed) }
        let extensions = ["image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp", "application/pdf": "pdf",
                          "text/plain": "txt", "application/json": "json", "audio/mpeg": "mp3", "audio/ogg": "ogg", "video/mp4": "mp4"]
        return "attachment." + (extensions[mediaType.lowercased()] ?? "bin")
    }

    /// Writes the bytes to a new private directory and runs `body` with the file's path; both are removed after.
    public func withTemporaryFile<R>(_ body: (String) async throws -> R) async throws -> R {
        let directory = FileManager.default.temporaryDirectory.path + "/parley-data-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + fileName
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw OperationError.refused("cannot write the data: attachment to \(directory)")
        }
        return try await body(path)
    }
}
