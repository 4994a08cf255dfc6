import ParleyClient
import ParleyProtocol

/// What an operation refuses before or instead of asking the engine. The text is the one line a person
/// reads; the case decides the exit status and the JSON-RPC code (`ErrorCategory`).
public enum OperationError: Error, Sendable, Equatable, CustomStringConvertible, ClassifiedError {
    /// A parameter is missing or malformed; nothing was tried.
    case invalidInput(String)
    /// The request is well formed but cannot be carried out (no such message, the numbers differ).
    case refused(String)
    /// The digits or code given are no safety number at all.
    case notASafetyNumber
    /// The safety number given is not the one with this contact: nothing was changed.
    case safetyNumberMismatch
    /// A file is where a download would go, and replacing it was not asked for: nothing was written.
    case fileExists(String)

    public var description: String {
        switch self {
        case .invalidInput(let text), .refused(let text): text
        case .notASafetyNumber: "that is not a safety number (60 digits, or the code shown beside them); nothing was changed"
        case .safetyNumberMismatch: "the safety numbers do not match: nothing was changed"
        case .fileExists(let path): "\(path) already exists; nothing was written"
        }
    }

    public var category: ErrorCategory {
        switch self {
        case .invalidInput, .notASafetyNumber: .invalidInput
        case .refused, .safetyNumberMismatch, .fileExists: .userError
        }
    }
}

/// Message ids as people and bots write them: 32 hex digits.
public enum MessageIdText {
    /// The id in `text`, or an error naming the parameter (`what`) it came from.
    public static func parse(_ text: String, _ what: String) throws(OperationError) -> [UInt8] {
        guard let id = MessageId(hex: text) else { throw .invalidInput("\(what) \(text) is not a message id (32 hex digits)") }
        return id.bytes
    }
}
