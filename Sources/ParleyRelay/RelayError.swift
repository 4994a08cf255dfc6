import HTTPTypes

/// Failures the relay reports to clients: each maps to one HTTP status and a stable `error` code.
public enum RelayError: Error, Sendable, Equatable {
    case badRequest(String)
    case unauthorized(String)
    case forbidden(String)
    case notFound(String)
    case conflict(String)
    case deviceMismatch(missing: [UInt32], extra: [UInt32], stale: [UInt32])
    /// A group commit or send for another epoch than the group's current one (which it carries).
    case epochConflict(UInt64)
    case payloadTooLarge(String)
    case mailboxFull(String)
    case rateLimited
    case unavailable(String)
    /// The storage failed for a reason that is not a bug (a full disk, too many open files…).
    case storage(StorageFault)

    var status: HTTPResponse.Status {
        switch self {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict, .epochConflict: .conflict
        case .deviceMismatch(let missing, let extra, _): missing.isEmpty && extra.isEmpty ? .gone : .conflict
        case .payloadTooLarge: .contentTooLarge
        case .mailboxFull: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .rateLimited: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .storage(let fault): fault.status
        }
    }

    var code: String {
        switch self {
        case .badRequest: "bad_request"
        case .unauthorized: "unauthorized"
        case .forbidden: "forbidden"
        case .notFound: "not_found"
        case .conflict: "conflict"
        case .epochConflict: "epoch_conflict"
        case .deviceMismatch(let missing, let extra, _): missing.isEmpty && extra.isEmpty ? "stale_devices" : "device_mismatch"
        case .payloadTooLarge: "too_large"
        case .mailboxFull: "mailbox_full"
        case .rateLimited: "rate_limited"
        case .unavailable: "unavailable"
        case .storage(let fault): fault.code
        }
    }

    var message: String {
        switch self {
        case .badRequest(let m), .unauthorized(let m), .forbidden(let m), .notFound(let m), .conflict(let m),
             .payloadTooLarge(let m), .mailboxFull(let m), .unavailable(let m): m
        case .deviceMismatch: "the device list used by the sender is out of date"
        case .epochConflict(let epoch): "the group is at epoch \(epoch)"
        case .rateLimited: "too many requests; slow down and retry later"
        case .storage(let fault): fault.message
        }
    }
}
