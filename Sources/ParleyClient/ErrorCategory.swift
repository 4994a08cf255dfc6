import ParleyProtocol
import ParleyStore

/// The one table from a failure to what each edge reports: the exit status of `parley` (parley(1), EXIT
/// STATUS) and the error code of a JSON-RPC response (parley-jsonrpc(5), ERRORS). Parley's own codes are
/// the negated exit statuses (signal-cli's convention), so a bot maps either to the same cause.
public enum ErrorCategory: Sendable, CaseIterable {
    /// A parameter is missing or malformed: nothing was tried.
    case invalidInput
    /// The request cannot be carried out as asked: an unknown contact, no such message, numbers that differ.
    case userError
    /// A damaged store, a protocol error, anything not foreseen.
    case unexpected
    case relayOrNetwork
    case untrustedIdentity
    case rateLimited
    /// The administrator's policy file forbids the action, or cannot be read (parley-policy(5)).
    case policy

    public var exitCode: Int32 {
        switch self {
        case .invalidInput, .userError: 1
        case .unexpected: 2
        case .relayOrNetwork: 3
        case .untrustedIdentity: 4
        case .rateLimited: 5
        case .policy: 6
        }
    }

    /// The JSON-RPC error code: the reserved "invalid params" for bad input, else the negated exit status.
    public var rpcCode: Int64 {
        switch self {
        case .invalidInput: -32602
        default: -Int64(exitCode)
        }
    }

    /// What kind of failure `error` is.
    public static func of(_ error: any Error) -> ErrorCategory {
        switch error {
        case let error as any ClassifiedError: error.category
        default: .unexpected
        }
    }
}

/// An error that knows which row of the table it belongs to.
public protocol ClassifiedError: Error {
    var category: ErrorCategory { get }
}

extension ClientError: ClassifiedError {
    public var category: ErrorCategory {
        switch self {
        case .rateLimited: .rateLimited
        case .identityChanged: .untrustedIdentity
        case .noAccount, .accountExists, .unknownContact, .invalidAddress, .insecureTransport, .file, .noAttachment, .unknownDevice,
             .messageTooLarge, .notFailed, .homeInUse, .blocked, .unknownGroup, .notDirect, .noKeyPackages, .notAMember: .userError
        default: .relayOrNetwork
        }
    }

    /// The exit status for this error (signal-cli's convention: 3 relay or network, 4 untrusted identity, 5 rate limited).
    public var exitCode: Int32 { category.exitCode }
}

extension StoreError: ClassifiedError {
    /// Wrong passphrase, wrong or unreadable key file, missing store, a full disk: the user can fix it. A
    /// damaged or tampered store is unexpected.
    public var category: ErrorCategory {
        switch self {
        case .corrupt, .tamperedRow, .malformedRecord, .io, .unsupportedSchema, .upgradeFailed: .unexpected
        default: .userError
        }
    }
}

extension ProtocolError: ClassifiedError {
    public var category: ErrorCategory { .unexpected }
}
