import CHeap
import Foundation
import ParleyClient
import ParleyStore

/// One account the daemon serves: its engine, hub and method table.
public struct HeadlessAccount: Sendable {
    public let context: HeadlessContext
    let dispatcher: RPCDispatcher<HeadlessContext>
}

/// `parley daemon`: serves the method table on connections (standard input/output, Unix-socket clients,
/// HTTP) for one or several accounts, while each account's engine keeps its push connection open
/// (reconnecting by itself) and feeds the account's notification hub.
public final class HeadlessServer: Sendable {
    public let accounts: [HeadlessAccount]
    /// How often every subscription looks at the store even without an event: a safety net, since the
    /// engine's event stream keeps only the newest events when its consumer falls behind.
    static let sweepInterval: Duration = .seconds(2)
    /// Methods that need no account: with several accounts and no `account` parameter, the first answers.
    static let accountFree: Set<String> = ["version", "listAccounts"]

    /// The first (with one home, the only) account.
    public var context: HeadlessContext { accounts[0].context }

    public convenience init(engine: Engine) async {
        await self.init(engines: [engine])
    }

    /// Serves `engines` (at least one, each a different account).
    public init(engines: [Engine]) async {
        precondition(!engines.isEmpty, "a daemon serves at least one account")
        let addresses = engines.map(\.ownAddress), served = addresses.map(\.description)
        accounts = zip(engines, addresses).map { engine, account in
            let context = HeadlessContext(engine: engine, hub: NotificationHub(store: engine, account: account), account: account,
                                          served: served)
            return HeadlessAccount(context: context,
                                   dispatcher: RPCDispatcher(methods: HeadlessMethods.table, context: context, account: account.description))
        }
    }

    public func account(_ address: String) -> HeadlessAccount? { accounts.first { $0.context.account.description == address } }

    /// The account a request is for: the one its `account` parameter names, else the only one served.
    func route(_ request: RPCRequest) -> Result<HeadlessAccount, RPCError> {
        switch request.params["account"] {
        case .string(let named)?:
            guard let found = account(named) else { return .failure(.invalidParams("account: \(named) is not served by this daemon")) }
            return .success(found)
        case nil, .null?:
            if accounts.count == 1 || Self.accountFree.contains(request.method) { return .success(accounts[0]) }
            return .failure(RPCError(.invalidParams, "account: this daemon serves \(accounts.count) accounts; name one with the account parameter",
                                     data: .array(accounts.map { .string($0.context.account.description) })))
        default:
            return .failure(.invalidParams("account must be a string"))
        }
    }

    /// The response to one request object (nil for a notification), through the account's dispatcher.
    public func respond(to request: RPCRequest, from peer: any NotificationPeer) async -> JSONValue? {
        if let refusal = SignalCompatibility.refusal(request.method) { return request.id.map { RPCResponse.error(id: $0, refusal) } }
        switch route(request) {
        case .success(let account): return await account.dispatcher.respond(to: request, from: peer)
        case .failure(let error): return request.id.map { RPCResponse.error(id: $0, error) }
        }
    }

    /// The response line to one request line (nil for a notification).
    public func handle(_ line: String, from peer: any NotificationPeer) async -> String? {
        switch RPCRequest.parse(line) {
        case .success(let request): await respond(to: request, from: peer)?.serialized
        case .failure(let failure): RPCLine.error(id: failure.id, failure.error)
        }
    }

    /// Starts the subscriptions of `peer` that waited for their subscribe response, on every account.
    public func release(_ peer: any NotificationPeer) async {
        for account in accounts { await account.context.hub.release(peer) }
    }

    /// Ends every subscription of `peer`, on every account.
    public func unsubscribe(_ peer: any NotificationPeer) async {
        for account in accounts { await account.context.hub.unsubscribe(peer) }
    }

    /// Runs every account's engine side until cancelled: the push connection, events into the hub, the sweep.
    public func runEngine() async {
        await withTaskGroup(of: Void.self) { group in
            for account in accounts {
                let engine = account.context.engine, hub = account.context.hub
                group.addTask {
                    let events = await engine.subscribe()
                    await withTaskGroup(of: Void.self) { inner in
                        inner.addTask { await engine.runConnection() }
                        inner.addTask {
                            for await event in events { await hub.handle(event) }
                        }
                        inner.addTask {
                            // The outbox may hold messages a one-shot command could not deliver.
                            try? await engine.flushOutbox()
                        }
                        await inner.waitForAll()
                    }
                }
            }
            let hubs = accounts.map(\.context.hub)
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.sweepInterval)
                    for hub in hubs { await hub.pumpAll() }
                    // Bursts of mail leave glibc holding freed heap it would keep for good: hand it back, so
                    // a daemon's memory follows what it holds rather than its busiest moment.
                    parley_release_free_memory()
                }
            }
            await group.waitForAll()
        }
    }

    /// Serves one connection until the peer closes it; its subscriptions end with it.
    public func serve(_ connection: LineConnection) async {
        for await incoming in connection.lines() {
            connection.consumed()
            switch incoming {
            case .oversized:
                await connection.send(RPCLine.error(id: .null, RPCError(.parseError, "Parse error: line longer than \(LineConnection.maxLineBytes) bytes")))
            case .line(let line):
                if let response = await handle(line, from: connection) { await connection.send(response) }
                await release(connection)
            }
            if connection.isClosed { break }
        }
        await unsubscribe(connection)
        connection.close()
    }

    /// Accepts clients on `listener` and serves each concurrently, until the listener closes.
    public func serve(_ listener: UnixSocketListener) async {
        await withDiscardingTaskGroup { group in
            for await connection in listener.connections() {
                group.addTask { await self.serve(connection) }
            }
        }
    }
}
