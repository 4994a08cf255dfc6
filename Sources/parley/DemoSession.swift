import ArgumentParser
import Foundation
import Logging
import ParleyClient
import ParleyRelay
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTUI
#if canImport(Glibc)
import Glibc
#endif

/// The interactive demo: an embedded relay on a free loopback port, your account and the guide's in a
/// temporary directory (stores unlocked by key files there), both contacts of each other, the guide
/// answering on its own engine, and the chat window on yours with the guide's conversation open.
struct DemoSession {
    let keep: Bool

    func run(options base: ChatOptions) async throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("the demo opens the chat window and needs a terminal; `parley demo --script` runs without one")
        }
        let root = try Self.makeDirectory()
        defer { if !keep { try? FileManager.default.removeItem(atPath: root) } }
        let port = try Self.freeLoopbackPort()
        let relayName = "127.0.0.1:\(port)"
        let relay = try await Self.startRelay(name: relayName, port: port, directory: root + "/relay")
        defer { relay.cancel() }

        let youAddress = try AccountAddress("you@\(relayName)"), guideAddress = try AccountAddress("guide@\(relayName)")
        let you = try await Self.account(youAddress, directory: root + "/you")
        let guide = try await Self.account(guideAddress, directory: root + "/guide")
        try await you.addContact(guideAddress)
        try await guide.addContact(youAddress)

        let bot = GuideBot(engine: guide, user: youAddress)
        let botTask = Task { await bot.run() }
        defer { botTask.cancel() }
        try await bot.greet()
        // Fetch the greeting before the first paint, so it is on screen at once.
        try await Self.waitForGreeting(you, from: guideAddress)

        var options = base
        options.focus = .direct(try AccountAddress("guide@\(relayName)"))
        options.welcome = [
            "Welcome to the Parley demo.",
            "A relay is running on \(relayName) inside this process, and your account you@\(relayName) was created",
            "in \(root) (deleted when you quit\(keep ? " — kept: --keep" : "")).",
            "The guide bot is your first contact: C-n / C-p switch between this console and conversations.",
            "Try: say hello to the guide, /verify, /theme, /help. Quit with /quit or C-c.",
        ]
        options.tip = "say hello to the guide, Enter sends · /help"
        await ChatSession.run(engine: you, options: options)
        if keep { print("demo data kept in \(root)") }
    }

    static func makeDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base + "/parley-demo-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw ValidationError("cannot create a temporary directory in \(base)") }
        return String(cString: made)
    }

    /// Asks the kernel for a free port on 127.0.0.1 (the relay's name, which account addresses carry,
    /// must be known before it starts).
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("cannot open a socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ValidationError("cannot find a free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts the relay in a task and returns once it listens.
    static func startRelay(name: String, port: Int, directory: String) async throws -> Task<Void, Never> {
        let configuration = RelayConfiguration(name: name, host: "127.0.0.1", port: port, dataDirectory: directory)
        let (listening, signal) = AsyncStream.makeStream(of: Result<Int, any Error>.self)
        let task = Task {
            // The chat window owns the terminal: the relay logs nothing.
            let logger = Logger(label: "parley-demo-relay", factory: { _ in SwiftLogNoOpLogHandler() })
            do {
                try await RelayServer(configuration: configuration).run(logger: logger) { port in signal.yield(.success(port)) }
            } catch {
                signal.yield(.failure(error))
            }
            signal.finish()
        }
        for await result in listening {
            if case .failure(let error) = result { throw ClientError.network("the demo relay did not start: \(error)") }
            return task
        }
        throw ClientError.network("the demo relay stopped")
    }

    static func account(_ address: AccountAddress, directory: String) async throws -> Engine {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let keyFile = directory + "/store.key"
        try KeyFile.create(at: keyFile)
        let store = try EncryptedStore.create(at: directory + "/parley.db", unlock: [.keyFile(path: keyFile)])
        try ParleyHome.saveRelayOptions(store, tls: false, insecure: false, caFile: nil)
        return try await Engine.createAccount(address, store: store, relay: try RelayClient(endpoint: try RelayEndpoint(relay: address.relay, tls: false)))
    }

    static func waitForGreeting(_ engine: Engine, from guide: AccountAddress) async throws {
        for _ in 0..<100 {
            _ = try await engine.receivePending()
            if try !engine.messages(in: .direct(guide), limit: 1).isEmpty { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
