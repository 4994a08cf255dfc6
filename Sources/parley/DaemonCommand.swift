import ArgumentParser
import Dispatch
import Foundation
import ParleyClient
import ParleyHeadless
#if canImport(Glibc)
import Glibc
#endif

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Serve JSON-RPC 2.0 for bots, on standard input/output or a Unix socket.",
        discussion: """
            One JSON-RPC request per line in, one response or notification per line out; every method, \
            notification and error code is in parley-jsonrpc(5). The daemon keeps the push connection to the \
            relay open and reconnects by itself. Messages that arrive while no client is subscribed are kept \
            and delivered on subscribeReceive, also across daemon restarts.

            Without --stdio it listens on --socket (default $XDG_RUNTIME_DIR/parley/ACCOUNT.sock, mode 0600) \
            until SIGTERM or SIGINT. With --stdio it serves standard input and output and exits at the end of \
            input; add --socket to serve the socket as well.
            """)

    @Flag(help: "Serve JSON-RPC on standard input and output.") var stdio = false
    @Option(help: ArgumentHelp("Listen on this Unix socket path.", valueName: "PATH")) var socket: String?
    @OptionGroup var client: ClientOptions

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        try client.lockHome(as: "daemon")
        let engine = try client.openEngine()
        let server = await HeadlessServer(engine: engine)
        let account = server.context.account
        var listener: UnixSocketListener?
        if !stdio || socket != nil {
            let path: String
            do {
                path = try socket ?? UnixSocketListener.defaultPath(account: account.description)
                listener = try UnixSocketListener(path: path)
            } catch { throw ValidationError("\(error)") }
            note("parley daemon: \(account) listening on \(path)")
        }
        let stop = StopSignals { [listener] in
            listener?.close()
            Glibc.exit(0)
        }
        defer { withExtendedLifetime(stop) {} }
        let engineTask = Task { await server.runEngine() }
        defer { engineTask.cancel() }
        if stdio {
            if let listener { Task { await server.serve(listener) } }
            note("parley daemon: \(account) serving on standard input and output")
            await server.serve(LineConnection(readFD: STDIN_FILENO, writeFD: STDOUT_FILENO, closeOnFinish: false))
            listener?.close()
        } else if let listener {
            await server.serve(listener)
        }
    }

    private func note(_ text: String) {
        let line = text + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}

/// Runs `action` on SIGTERM or SIGINT (the socket file is removed before the process exits).
final class StopSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]

    init(_ action: @escaping @Sendable () -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: action)
            source.resume()
            return source
        }
    }
}
