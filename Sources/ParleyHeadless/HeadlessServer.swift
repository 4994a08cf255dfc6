import CHeap
import Foundation
import ParleyClient
import ParleyStore

/// `parley daemon`: serves the method table on connections (standard input/output, Unix-socket clients)
/// while the engine keeps the push connection open (reconnecting by itself) and feeds the notification hub.
public final class HeadlessServer: Sendable {
    public let context: HeadlessContext
    let dispatcher: RPCDispatcher<HeadlessContext>
    /// How often every subscription looks at the store even without an event: a safety net, since the
    /// engine's event stream keeps only the newest events when its consumer falls behind.
    static let sweepInterval: Duration = .seconds(2)

    public init(engine: Engine) async {
        let account = engine.ownAddress
        context = HeadlessContext(engine: engine, hub: NotificationHub(store: engine, account: account), account: account)
        dispatcher = RPCDispatcher(methods: HeadlessMethods.table, context: context, account: account.description)
    }

    /// Runs the engine side until cancelled: the push connection, events into the hub, the sweep.
    public func runEngine() async {
        let engine = context.engine, hub = context.hub
        let events = await engine.subscribe()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await engine.runConnection() }
            group.addTask {
                for await event in events { await hub.handle(event) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.sweepInterval)
                    await hub.pumpAll()
                    // Bursts of mail leave glibc holding freed heap it would keep for good: hand it back, so
                    // a daemon's memory follows what it holds rather than its busiest moment.
                    parley_release_free_memory()
                }
            }
            group.addTask {
                // The outbox may hold messages a one-shot command could not deliver.
                try? await engine.flushOutbox()
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
                if let response = await dispatcher.handle(line, from: connection) { await connection.send(response) }
                await context.hub.release(connection)
            }
            if connection.isClosed { break }
        }
        await context.hub.unsubscribe(connection)
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
