import ParleyClient

/// Every user-visible operation, once: the `parley` subcommands, the daemon's JSON-RPC methods and the chat
/// window's commands are adapters over these functions. Inputs are typed, results are `Codable` values
/// whose JSON (`JSONValue(encoding:)`) is what both `--json` and the methods give, and failures are
/// `OperationError`s or the engine's own errors, each a row of `ErrorCategory`.
public struct Operations: Sendable {
    public let engine: Engine
    /// The administrator's policy the operations enforce (parley-policy(5)); the process's own by default.
    public let policy: Policy

    public init(engine: Engine, policy: Policy = .current) {
        self.engine = engine
        self.policy = policy
    }
}
