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
        abstract: "Serve JSON-RPC 2.0 for bots, on standard input/output, a Unix socket or HTTP.",
        discussion: """
            One JSON-RPC request per line in, one response or notification per line out; every method, \
            notification and error code is in parley-jsonrpc(5). The daemon keeps the push connection to the \
            relay open and reconnects by itself. Messages that arrive while no client is subscribed are kept \
            and delivered on subscribeReceive, also across daemon restarts.

            Without --stdio or --http it listens on --socket (default $XDG_RUNTIME_DIR/parley/ACCOUNT.sock, mode \
            0600) until SIGTERM or SIGINT. With --stdio it serves standard input and output and exits at the end \
            of input; add --socket to serve the socket as well. --http HOST:PORT serves signal-cli's HTTP endpoint \
            (loopback addresses only, unless --http-token-file is given). Repeat --home (with one --key-file or \
            --passphrase-file per home) to serve several accounts: requests then name theirs with "account".
            """)

    @Flag(help: "Serve JSON-RPC on standard input and output.") var stdio = false
    @Option(help: ArgumentHelp("Listen on this Unix socket path.", valueName: "PATH")) var socket: String?
    @Option(help: ArgumentHelp("Serve signal-cli's HTTP endpoint (/api/v1/rpc, /api/v1/events, /api/v1/check) on this address.",
                               valueName: "HOST:PORT"))
    var http: String?
    @Option(name: .customLong("http-token-file"),
            help: ArgumentHelp("Require Authorization: Bearer with the token on this file's first line (needed off loopback).", valueName: "FILE"))
    var httpTokenFile: String?

    @Option(help: ArgumentHelp("An account's home directory; repeat to serve several accounts (default: $PARLEY_HOME, else $XDG_DATA_HOME/parley).",
                               valueName: "DIR"))
    var home: [String] = []
    @Option(name: .customLong("key-file"),
            help: ArgumentHelp("Unlock with this key file; with several --home, one per home in the same order.", valueName: "FILE"))
    var keyFile: [String] = []
    @Option(name: .customLong("passphrase-file"),
            help: ArgumentHelp("Read the passphrase from FILE's first line; with several --home, one per home in the same order.", valueName: "FILE"))
    var passphraseFile: [String] = []
    @Flag(help: "Allow plain http/ws to a relay that is not on a loopback address.")
    var insecure = false
    @Option(name: .customLong("trust-new-identities"),
            help: ArgumentHelp("on-first-use: trust the first key, stop sending when a verified key changes; always; never.",
                               valueName: "POLICY"))
    var trustPolicy: TrustPolicyArgument = .onFirstUse

    func validate() throws {
        let homes = max(home.count, 1)
        for (files, name) in [(keyFile, "--key-file"), (passphraseFile, "--passphrase-file")] where !files.isEmpty && files.count != homes {
            throw ValidationError("give \(name) once per --home (\(homes)), in the same order")
        }
        guard keyFile.isEmpty || passphraseFile.isEmpty else {
            throw ValidationError("unlock every home the same way: --key-file or --passphrase-file, once per --home")
        }
        guard Set(home).count == home.count else { throw ValidationError("a --home is given twice") }
    }

    /// The client options of each home (the i-th unlock option belongs to the i-th home).
    func clients() throws -> [ClientOptions] {
        let homes: [String?] = home.isEmpty ? [nil] : home.map { $0 }
        return try homes.enumerated().map { index, home in
            var arguments = ["--trust-new-identities", trustPolicy.policy.rawValue]
            if let home { arguments += ["--home", home] }
            if !keyFile.isEmpty { arguments += ["--key-file", keyFile[index]] }
            if !passphraseFile.isEmpty { arguments += ["--passphrase-file", passphraseFile[index]] }
            if insecure { arguments.append("--insecure") }
            return try ClientOptions.parse(arguments)
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        var engines: [Engine] = []
        var addresses: Set<String> = []
        for client in try clients() {
            // One long-running process per home: each home served here is locked for this daemon.
            try client.lockHome(as: "daemon")
            let engine = try client.openEngine()
            guard addresses.insert(await engine.account.address).inserted else {
                throw ValidationError("\(client.resolvedHome.path) holds \(await engine.account.address), which another --home already serves")
            }
            engines.append(engine)
        }
        let server = await HeadlessServer(engines: engines)
        let account = server.context.account
        var endpoint: HTTPEndpoint?
        if let http {
            do {
                let (host, port) = try HTTPEndpointConfiguration.parseAddress(http)
                let token = try httpTokenFile.map { try HTTPEndpointConfiguration.readToken(file: $0) }
                endpoint = try await HTTPEndpoint.bind(HTTPEndpointConfiguration(host: host, port: port, token: token), serving: server)
            } catch let error as HTTPEndpointError {
                throw ValidationError("\(error)")
            } catch {
                throw ValidationError("--http \(http): \(error)")
            }
            let shown = host(http)
            note("parley daemon: \(server.accounts.map(\.context.account.description).joined(separator: ", ")) on http://\(shown):\(endpoint!.port)/api/v1/" +
                 (httpTokenFile == nil ? "" : " (bearer token required)"))
        }
        var listener: UnixSocketListener?
        if (!stdio && http == nil) || socket != nil {
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
        if let endpoint { Task { await endpoint.run() } }
        if stdio {
            if let listener { Task { await server.serve(listener) } }
            note("parley daemon: \(account) serving on standard input and output")
            await server.serve(LineConnection(readFD: STDIN_FILENO, writeFD: STDOUT_FILENO, closeOnFinish: false))
            listener?.close()
        } else if let listener {
            await server.serve(listener)
        } else {
            // HTTP only: serve until a signal ends the process.
            while true { try? await Task.sleep(for: .seconds(3600)) }
        }
    }

    private func host(_ address: String) -> String {
        (try? HTTPEndpointConfiguration.parseAddress(address)).map { $0.host.contains(":") ? "[\($0.host)]" : $0.host } ?? address
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
