import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

// The results of sending, searching and fetching files (names as in Results.swift: signal-cli's).

public struct ReceiptResult: Codable, Sendable, Equatable {
    public let recipient: String
    public let messageIds: [String]
}

public struct TypingResult: Codable, Sendable, Equatable {
    public let recipients: [String]
    public let stop: Bool
}

public struct SendResult: Codable, Sendable, Equatable {
    /// The first stored message's timestamp and id (absent when every recipient failed).
    public let timestamp: UInt64?
    public let id: String?
    public let results: [RecipientResult]
}

/// One recipient's outcome: SUCCESS, PENDING (saved in the outbox, retried on every reconnect) or FAILURE.
public struct RecipientResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case success = "SUCCESS", pending = "PENDING", failure = "FAILURE"
    }

    public let recipient: String
    public let id: String?
    public let timestamp: UInt64?
    public let state: String?
    public let type: Outcome
    public let error: ErrorObject?
    /// Why a PENDING message is not delivered yet, when the relay said so (the CLI reports it; not in the JSON).
    public var pendingBecause: ErrorObject? = nil

    enum CodingKeys: String, CodingKey { case recipient, id, timestamp, state, type, error }
}

/// An error as a JSON-RPC error object (not the relay's `ErrorBody`, which names an HTTP error): the code of its `ErrorCategory` row and its one line.
public struct ErrorObject: Codable, Sendable, Equatable {
    public let code: Int64
    public let message: String

    public init(_ error: any Error) {
        code = ErrorCategory.of(error).rpcCode
        message = String(describing: error)
    }
}

/// A stored message as search results and history give it.
public struct HistoryEntry: Codable, Sendable, Equatable {
    public let id: String
    public let conversation: String
    public let source: String
    public let sourceDevice: UInt32
    public let direction: String
    public let timestamp: UInt64
    public let receivedTimestamp: UInt64
    public let message: String
    public let state: String
    /// The attached file's name; null when there is none.
    public let attachment: String?
    /// The id of the message this one replies to; null when it is no reply.
    public let replyTo: String?

    public init(_ m: MessageRecord) {
        id = Hex.encode(m.clientMessageId)
        conversation = m.conversation.description
        source = m.sender.address
        sourceDevice = m.sender.deviceId
        direction = HistoryEntry.direction(m.direction)
        timestamp = m.sentAt
        receivedTimestamp = m.receivedAt
        message = m.text
        state = "\(m.state)"
        attachment = m.attachment?.fileName
        replyTo = m.replyTo.map(Hex.encode)
    }

    public static func direction(_ d: MessageDirection) -> String {
        switch d {
        case .incoming: "incoming"
        case .outgoing: "outgoing"
        case .system: "system"
        }
    }

    // attachment and replyTo are written as null when absent (the documented shape), not left out.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(conversation, forKey: .conversation)
        try c.encode(source, forKey: .source)
        try c.encode(sourceDevice, forKey: .sourceDevice)
        try c.encode(direction, forKey: .direction)
        try c.encode(timestamp, forKey: .timestamp)
        try c.encode(receivedTimestamp, forKey: .receivedTimestamp)
        try c.encode(message, forKey: .message)
        try c.encode(state, forKey: .state)
        try c.encode(attachment, forKey: .attachment)
        try c.encode(replyTo, forKey: .replyTo)
    }
}

public struct AttachmentResult: Codable, Sendable, Equatable {
    public let id: String
    public let filename: String
    public let contentType: String
    public let size: UInt64
    /// Where it was saved, or
    public let file: String?
    /// its bytes, base64 (when not saved to a file).
    public let data: String?
}
