/// The type a parameter must have. Checked before a handler runs, so handlers read parameters without
/// re-checking and a mistyped request always gets -32602 naming the parameter.
public enum ParamType: String, Sendable {
    case string = "string"
    case strings = "string or array of strings"
    case integer = "integer"
    case integers = "integer or array of integers"
    case boolean = "boolean"

    func accepts(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.string, .string), (.integer, .int), (.boolean, .bool), (.strings, .string), (.integers, .int): true
        case (.strings, .array(let items)): !items.isEmpty && items.allSatisfy { $0.stringValue != nil }
        case (.integers, .array(let items)): !items.isEmpty && items.allSatisfy { $0.intValue != nil }
        default: false
        }
    }
}

public struct RPCParam: Sendable {
    public let name: String
    public let type: ParamType
    public let required: Bool
    public let summary: String

    public init(_ name: String, _ type: ParamType, required: Bool = false, _ summary: String) {
        self.name = name
        self.type = type
        self.required = required
        self.summary = summary
    }
}

/// What a handler gets: its checked parameters, the connection it came from, and the daemon's context.
public struct RPCCall<Context: Sendable>: Sendable {
    public let params: [String: JSONValue]
    public let connection: any NotificationPeer
    public let context: Context

    public func string(_ name: String) -> String? { params[name]?.stringValue }
    public func int(_ name: String) -> Int64? { params[name]?.intValue }
    public func bool(_ name: String) -> Bool? { params[name]?.boolValue }
    /// A `string or array of strings` parameter as an array.
    public func strings(_ name: String) -> [String] {
        switch params[name] {
        case .string(let s)?: [s]
        case .array(let items)?: items.compactMap(\.stringValue)
        default: []
        }
    }
    public func ints(_ name: String) -> [Int64] {
        switch params[name] {
        case .int(let i)?: [i]
        case .array(let items)?: items.compactMap(\.intValue)
        default: []
        }
    }
}

/// One entry of the method table: the name, what it does, its parameters, what it returns, and the
/// handler. The man page documents exactly the names of the table (a test compares them).
public struct RPCMethod<Context: Sendable>: Sendable {
    public let name: String
    public let summary: String
    public let params: [RPCParam]
    public let result: String
    public let handler: @Sendable (RPCCall<Context>) async throws -> JSONValue

    public init(_ name: String, _ summary: String, params: [RPCParam] = [], result: String,
                handler: @escaping @Sendable (RPCCall<Context>) async throws -> JSONValue) {
        self.name = name
        self.summary = summary
        self.params = params
        self.result = result
        self.handler = handler
    }
}

/// Parses request lines, checks them against the method table, runs the handler, and builds the
/// response line (nil for a JSON-RPC notification, which gets none).
public struct RPCDispatcher<Context: Sendable>: Sendable {
    public let methods: [String: RPCMethod<Context>]
    public let context: Context
    /// Accepted with any method and ignored if it names this account: signal-cli clients send it.
    public let account: String?

    public init(methods: [RPCMethod<Context>], context: Context, account: String? = nil) {
        self.methods = Dictionary(methods.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.context = context
        self.account = account
    }

    public func handle(_ line: String, from connection: any NotificationPeer) async -> String? {
        switch RPCRequest.parse(line) {
        case .success(let request): await respond(to: request, from: connection)?.serialized
        case .failure(let failure): RPCResponse.error(id: failure.id, failure.error).serialized
        }
    }

    /// The response object to a parsed request (nil for a notification).
    public func respond(to request: RPCRequest, from connection: any NotificationPeer) async -> JSONValue? {
        let outcome: Result<JSONValue, RPCError>
        if let method = methods[request.method] {
            outcome = await run(method, request, connection)
        } else {
            outcome = .failure(RPCError(.methodNotFound, "Method not found: \(request.method)"))
        }
        guard let id = request.id else { return nil }
        switch outcome {
        case .success(let result): return RPCResponse.result(id: id, result)
        case .failure(let error): return RPCResponse.error(id: id, error)
        }
    }

    private func run(_ method: RPCMethod<Context>, _ request: RPCRequest, _ connection: any NotificationPeer) async -> Result<JSONValue, RPCError> {
        var params = request.params
        if let named = params["account"] {
            guard let account, named == .string(account) else {
                return .failure(.invalidParams("account: this daemon serves \(account ?? "one account") only"))
            }
            params["account"] = nil
        }
        let known = Set(method.params.map(\.name))
        if let unknown = params.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(.invalidParams("unknown parameter \(unknown) for \(method.name)"))
        }
        for param in method.params {
            guard let value = params[param.name], value != .null else {
                if param.required { return .failure(.invalidParams("missing parameter \(param.name) (\(param.type.rawValue))")) }
                params[param.name] = nil
                continue
            }
            guard param.type.accepts(value) else { return .failure(.invalidParams("\(param.name) must be a \(param.type.rawValue)")) }
        }
        do {
            return .success(try await method.handler(RPCCall(params: params, connection: connection, context: context)))
        } catch {
            return .failure(RPCError.from(error))
        }
    }
}
