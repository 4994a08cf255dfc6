import ParleyClient
import ParleyProtocol
import ParleyStore

/// The error codes a response can carry. The JSON-RPC 2.0 ones, and Parley's own: the negated exit codes
/// of the one-shot commands (parley(1)), so a bot maps either to the same cause. Which error gets which
/// code is decided by `ErrorCategory` (a test checks that every row of it has its code here).
public enum RPCErrorCode: Int64, CaseIterable, Sendable {
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
    /// A signal-cli method, or a parameter of one, Parley has no equivalent for (phone registration, profiles,
    /// group admins, …): never a silent success, and nothing was done.
    case notSupported = -32000
    /// Something the caller can fix: an unknown contact, a malformed address, a missing attachment.
    case userError = -1
    case unexpected = -2
    case relayOrNetwork = -3
    case untrustedIdentity = -4
    case rateLimited = -5
    /// The administrator's policy forbids it (parley-policy(5)).
    case policy = -6

    public var summary: String {
        switch self {
        case .parseError: "the line is not valid JSON"
        case .invalidRequest: "the JSON is not a JSON-RPC 2.0 request object"
        case .methodNotFound: "no method of that name"
        case .invalidParams: "a parameter is missing, unknown, of the wrong type or malformed (an address, a message id)"
        case .internalError: "the daemon failed while handling the request"
        case .notSupported: "a signal-cli method or parameter Parley has no equivalent for"
        case .userError: "the request cannot be carried out as asked (unknown contact, no such message)"
        case .unexpected: "an unexpected failure (damaged store, protocol error)"
        case .relayOrNetwork: "the relay refused the request or could not be reached"
        case .untrustedIdentity: "the recipient's identity key is not trusted; verify or trust it first"
        case .rateLimited: "the relay is rate limiting this account; retry later"
        case .policy: "the administrator's policy forbids it (parley-policy(5))"
        }
    }
}

/// An error response's body.
public struct RPCError: Error, Sendable, Equatable {
    public let code: RPCErrorCode
    public let message: String
    public let data: JSONValue?

    public init(_ code: RPCErrorCode, _ message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func invalidParams(_ message: String) -> RPCError { RPCError(.invalidParams, message) }

    var json: JSONValue {
        var body: [String: JSONValue] = ["code": .int(code.rawValue), "message": .string(message)]
        if let data { body["data"] = data }
        return .object(body)
    }

    /// Maps what the operations, the engine and the store throw onto codes (the table is `ErrorCategory`); the
    /// message is the one-line text the CLI prints.
    public static func from(_ error: any Error) -> RPCError {
        if let error = error as? RPCError { return error }
        let body = ErrorObject(error)
        return RPCError(RPCErrorCode(rawValue: body.code) ?? .unexpected, body.message)
    }
}

/// One parsed request. `id` is nil for a notification (no response is written).
public struct RPCRequest: Sendable {
    public let id: JSONValue?
    public let method: String
    public let params: [String: JSONValue]

    /// Parses one line; on failure, the error response's id (null when the id could not be read) and error.
    public static func parse(_ line: String) -> Result<RPCRequest, RPCFailure> {
        guard let value = JSONValue.parse(line) else { return .failure(RPCFailure(id: .null, error: RPCError(.parseError, "Parse error"))) }
        guard case .object = value else {
            return .failure(RPCFailure(id: .null, error: RPCError(.invalidRequest, "Invalid Request: expected one JSON object per line (batches are not supported)")))
        }
        return parse(value)
    }

    /// Checks one parsed JSON value (a line, or a member of an HTTP batch) as a request.
    public static func parse(_ value: JSONValue) -> Result<RPCRequest, RPCFailure> {
        guard case .object(let members) = value else {
            return .failure(RPCFailure(id: .null, error: RPCError(.invalidRequest, "Invalid Request: expected a JSON object")))
        }
        let id = members["id"]
        switch id {
        case nil, .string?, .int?, .null?: break
        default: return .failure(RPCFailure(id: .null, error: RPCError(.invalidRequest, "Invalid Request: id must be a string, an integer or null")))
        }
        guard members["jsonrpc"] == .string("2.0") else {
            return .failure(RPCFailure(id: id ?? .null, error: RPCError(.invalidRequest, "Invalid Request: jsonrpc must be \"2.0\"")))
        }
        guard let method = members["method"]?.stringValue else {
            return .failure(RPCFailure(id: id ?? .null, error: RPCError(.invalidRequest, "Invalid Request: method must be a string")))
        }
        let params: [String: JSONValue]
        switch members["params"] {
        case nil, .null?: params = [:]
        case .object(let object)?: params = object
        case .array?: return .failure(RPCFailure(id: id ?? .null, error: .invalidParams("params must be an object (named parameters)")))
        default: return .failure(RPCFailure(id: id ?? .null, error: RPCError(.invalidRequest, "Invalid Request: params must be an object")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }
}

public struct RPCFailure: Error, Sendable {
    public let id: JSONValue
    public let error: RPCError
}

/// The response objects the daemon writes.
public enum RPCResponse {
    public static func result(id: JSONValue, _ result: JSONValue) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id, "result": result])
    }

    public static func error(id: JSONValue, _ error: RPCError) -> JSONValue {
        .object(["jsonrpc": "2.0", "id": id, "error": error.json])
    }
}

/// The lines the daemon writes.
public enum RPCLine {
    public static func result(id: JSONValue, _ result: JSONValue) -> String { RPCResponse.result(id: id, result).serialized }

    public static func error(id: JSONValue, _ error: RPCError) -> String { RPCResponse.error(id: id, error).serialized }

    public static func notification(_ method: String, _ params: JSONValue) -> String {
        JSONValue.object(["jsonrpc": "2.0", "method": .string(method), "params": params]).serialized
    }
}
