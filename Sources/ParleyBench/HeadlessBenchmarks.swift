import Foundation
import Logging
import ParleyClient
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// Headless mode: how fast a one-shot `parley send` starts and finishes, and whether a daemon's memory
/// stays flat while a stream of messages goes through it (and, with headless, the daemon's HTTP endpoint
/// beside its socket: HeadlessTransportBenchmarks.swift).
///
///   headless_startup  the `parley` binary next to this one (release under `make bench`), run `runs` times:
///                     `parley --version` (process start), `parley contacts` (plus opening the store with
///                     a key file), `parley send` (plus the engine and the relay round trips) to a contact
///                     on an in-process relay; p50/p90 wall each, spawn to exit
///   headless_soak     `parley daemon --socket` for one account; another account (an in-process engine)
///                     streams `soakMessages` messages to it while a subscriber on the socket reads the
///                     `receive` notifications; the daemon's VmRSS after the first `warmUp` messages, at
///                     the end, and settled (5 s later, idle), every message counted once by id
struct HeadlessBenchmarks {
    static let sendTargetMs = 50.0

    var runs = 30
    var soakMessages = 20_000
    var warmUp = 1_000
    private(set) var sendP50Ms: Double?
    private(set) var soakGrowthKB: Int?

    /// Runs the selected parts on a copy (the way main.swift drives the other benchmark groups).
    func measured(startup wantStartup: Bool, soak wantSoak: Bool) async -> HeadlessBenchmarks {
        var copy = self
        if wantStartup {
            await copy.startup()
            if let parley = Self.parleyBinary(else: JSONLine(name: "headless_transport")) {
                await HeadlessTransportBenchmarks().run(parley: parley)
            }
        }
        if wantSoak { await copy.soak() }
        return copy
    }

    /// The `parley` next to this binary; without one, prints `line` marked skipped and returns nil.
    static func parleyBinary(else line: JSONLine) -> String? {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/parley"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        var skipped = line
        skipped.add("skipped", .string("no parley binary next to parley-bench (build it: make release)"))
        print(skipped.text)
        return nil
    }

    mutating func startup() async {
        var line = JSONLine(name: "headless_startup")
        guard let parley = Self.parleyBinary(else: line) else { return }
        do {
            let world = try await HeadlessWorld.start(parley: parley)
            defer { world.stop() }
            let alice = world.home("alice"), bot = world.home("bot")
            try world.cli(["init", "alice@\(world.relayName)"] + alice)
            try world.cli(["init", "bot@\(world.relayName)"] + bot)
            try world.cli(["add-contact", "bot@\(world.relayName)"] + alice)
            try world.cli(["send", "bot@\(world.relayName)", "first message starts the session"] + alice)
            func timed(_ arguments: [String]) throws -> [Double] {
                try (0..<runs).map { _ in try world.cliWall(arguments) }.sorted()
            }
            let version = try timed(["--version"])
            let contacts = try timed(["contacts"] + alice)
            let send = try timed(["send", "bot@\(world.relayName)", "a message from the startup benchmark"] + alice)
            for (name, samples) in [("version", version), ("contacts", contacts), ("send", send)] {
                line.add("\(name)_p50_ms", .number(RelayBenchmarks.percentile(samples, 0.5)))
                line.add("\(name)_p90_ms", .number(RelayBenchmarks.percentile(samples, 0.9)))
            }
            sendP50Ms = RelayBenchmarks.percentile(send, 0.5)
            line.add("send_target_ms", .number(Self.sendTargetMs))
            line.add("runs", .int(runs))
            line.add("binary", .string(parley))
        } catch {
            line.add("error", .string("\(error)"))
        }
        print(line.text)
    }

    mutating func soak() async {
        var line = JSONLine(name: "headless_soak")
        guard let parley = Self.parleyBinary(else: line) else { return }
        do {
            let world = try await HeadlessWorld.start(parley: parley)
            defer { world.stop() }
            let bot = world.home("bot"), botAddress = "bot@\(world.relayName)"
            try world.cli(["init", botAddress] + bot)
            let sender = try await world.engine("alice")
            try await sender.addContact(try AccountAddress(botAddress))
            let socket = world.directory + "/bot.sock"
            let daemon = try world.spawn(["daemon", "--socket", socket] + bot)
            defer { kill(daemon, SIGTERM); var status: Int32 = 0; waitpid(daemon, &status, 0) }
            let subscriber = try SoakSubscriber(socket: socket)
            subscriber.subscribe()
            let started = Measure.now()
            try await Self.stream(warmUp, from: sender, to: try AccountAddress(botAddress), offset: 0)
            try await subscriber.wait(for: warmUp)
            let rssStart = Self.rssKB(of: daemon)
            let streamed = Measure.now()
            try await Self.stream(soakMessages, from: sender, to: try AccountAddress(botAddress), offset: warmUp)
            try await subscriber.wait(for: warmUp + soakMessages)
            let seconds = Double(Measure.now() - streamed) / 1e9
            let rssEnd = Self.rssKB(of: daemon)
            // The end falls in a burst's wake; the daemon hands freed heap back every couple of seconds,
            // so what it still holds once idle is what would show a leak.
            try await Task.sleep(for: .seconds(5))
            let rssSettled = Self.rssKB(of: daemon)
            line.add("messages", .int(soakMessages))
            line.add("warm_up_messages", .int(warmUp))
            line.add("rss_start_kb", .int(rssStart ?? -1))
            line.add("rss_end_kb", .int(rssEnd ?? -1))
            if let rssStart, let rssEnd { line.add("rss_growth_kb", .int(rssEnd - rssStart)) }
            line.add("rss_settled_kb", .int(rssSettled ?? -1))
            if let rssStart, let rssSettled { soakGrowthKB = rssSettled - rssStart; line.add("rss_settled_growth_kb", .int(rssSettled - rssStart)) }
            line.add("delivered_unique", .int(subscriber.unique))
            line.add("duplicates", .int(subscriber.duplicates))
            line.add("msgs_per_s", .number(Double(soakMessages) / seconds))
            line.add("elapsed_s", .number(Double(Measure.now() - started) / 1e9))
        } catch {
            line.add("error", .string("\(error)"))
        }
        print(line.text)
    }

    /// Sends `count` messages, at most `window` in flight (the engine batches concurrent sends).
    static func stream(_ count: Int, from sender: Engine, to peer: AccountAddress, offset: Int, window: Int = 128) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                if i >= window { try await group.next() }
                group.addTask { _ = try await sender.send(text: "soak \(offset + i) the quick brown fox jumps over the lazy dog", to: peer) }
            }
            try await group.waitForAll()
        }
    }

    static func rssKB(of pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
}

/// An in-process relay and homes for the `parley` binary under a temporary directory.
final class HeadlessWorld: @unchecked Sendable {
    let parley: String
    let directory: String
    let relayName: String
    private let relayTask: Task<Void, any Error>

    private init(parley: String, directory: String, relayName: String, relayTask: Task<Void, any Error>) {
        self.parley = parley
        self.directory = directory
        self.relayName = relayName
        self.relayTask = relayTask
    }

    static func start(parley: String) async throws -> HeadlessWorld {
        let directory = NSTemporaryDirectory() + "parley-bench-headless-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let port = try headlessFreePort()
        let relayName = "127.0.0.1:\(port)"
        var configuration = RelayConfiguration(name: relayName, host: "127.0.0.1", port: port, dataDirectory: directory + "/relay")
        configuration.removeRateLimits()
        let (listening, continuation) = AsyncStream.makeStream(of: Int.self)
        let relayTask = Task {
            var logger = Logger(label: "parley-bench.headless")
            logger.logLevel = .critical
            try await RelayServer(configuration: configuration).run(logger: logger) { continuation.yield($0) }
        }
        var iterator = listening.makeAsyncIterator()
        guard await iterator.next() == port else { relayTask.cancel(); throw BenchError("the relay did not start on port \(port)") }
        return HeadlessWorld(parley: parley, directory: directory, relayName: relayName, relayTask: relayTask)
    }

    /// --home and --key-file of the home `name` (the key file is made by `parley init`).
    func home(_ name: String) -> [String] { ["--home", directory + "/" + name, "--key-file", directory + "/" + name + ".key"] }

    func engine(_ name: String) async throws -> Engine {
        let path = directory + "/engine-" + name
        try KeyFile.create(at: path + ".key")
        let store = try EncryptedStore.create(at: path + ".db", unlock: [.keyFile(path: path + ".key")])
        return try await Engine.createAccount(try AccountAddress(name + "@" + relayName), store: store,
                                              relay: try RelayClient(endpoint: try RelayEndpoint(relay: relayName)))
    }

    func spawn(_ arguments: [String]) throws -> pid_t {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/cli.out", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/cli.err", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let argv = ([parley] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let status = posix_spawn(&pid, parley, &actions, nil, argv, environ)
        guard status == 0 else { throw BenchError("posix_spawn \(parley): \(String(cString: strerror(status)))") }
        return pid
    }

    /// Runs the CLI to completion; throws unless it exits 0.
    func cli(_ arguments: [String]) throws {
        _ = try cliWall(arguments)
    }

    /// Wall milliseconds from spawn to exit.
    func cliWall(_ arguments: [String]) throws -> Double {
        let start = Measure.now()
        let pid = try spawn(arguments)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let elapsed = Double(Measure.now() - start) / 1e6
        guard status == 0 else {
            let log = (try? String(contentsOfFile: directory + "/cli.err", encoding: .utf8)) ?? ""
            throw BenchError("parley \(arguments.first ?? "") exited with \(status): \(log.suffix(300))")
        }
        return elapsed
    }

    func stop() {
        relayTask.cancel()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Reads the daemon's notifications on a thread and counts messages by id.
final class SoakSubscriber: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()
    private var ids = Set<String>()
    private var repeats = 0

    init(socket path: String) throws {
        let deadline = Measure.now() + 30_000_000_000
        while true {
            if let fd = connectedUnixSocket(path) {
                self.fd = fd
                break
            }
            guard Measure.now() < deadline else { throw BenchError("the daemon did not listen on \(path)") }
            usleep(20_000)
        }
        Thread { [self] in readLoop() }.start()
    }

    var unique: Int { lock.withLock { ids.count } }
    var duplicates: Int { lock.withLock { repeats } }

    func subscribe() {
        let line = #"{"jsonrpc":"2.0","id":1,"method":"subscribeReceive","params":{"cursor":"soak"}}"# + "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
    }

    /// Waits (bounded: 10 minutes) until `count` distinct messages arrived.
    func wait(for count: Int) async throws {
        let deadline = Measure.now() + 600_000_000_000
        while unique < count {
            guard Measure.now() < deadline else { throw BenchError("only \(unique) of \(count) messages arrived") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func readLoop() {
        let marker = Array(#""dataMessage":{"id":""#.utf8)
        var pending = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return }
            pending += chunk[..<n]
            var start = 0
            while let newline = pending[start...].firstIndex(of: 0x0A) {
                let line = pending[start..<newline]
                if let range = line.firstRange(of: marker) {
                    let id = String(decoding: line[range.upperBound..<min(range.upperBound + 32, line.endIndex)], as: UTF8.self)
                    lock.withLock { if !ids.insert(id).inserted { repeats += 1 } }
                }
                start = newline + 1
            }
            pending.removeSubrange(..<start)
        }
    }
}

/// A descriptor connected to the Unix socket at `path`, or nil (nobody listens there yet, or the path does not
/// fit a sockaddr_un).
func connectedUnixSocket(_ path: String) -> Int32? {
    var address = sockaddr_un()
    guard path.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: path.utf8)
        raw[path.utf8.count] = 0
    }
    let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if connected == 0 { return fd }
    Glibc.close(fd)
    return nil
}

/// A port on 127.0.0.1 nobody listens on now (the kernel picks it), for the daemons the benchmarks start.
func headlessFreePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw BenchError("bind: \(String(cString: strerror(errno)))") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
