import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Shared fixtures (temporary directories, `eventually`, client devices, clocks) come from ParleyTestSupport,
// re-exported to every file of this target:
@_exported import ParleyTestSupport

// Fixtures of the end-to-end tests: a real `parley-relay` process on 127.0.0.1, in-process client
// engines with their own encrypted stores, raw HTTP for the hostile cases, and the `parley` CLI.
// Every test owns its relay process and temporary directories; waits are bounded polls on a condition,
// and no assertion depends on how long anything took.

/// The executables next to the test bundle (SwiftPM puts both in the same build directory), else
/// `<package>/.build/debug`. A missing binary is a failure, never a skip: `make test` builds everything
/// before `swift test`.
enum Binaries {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func path(_ name: String) throws -> String {
        var candidates: [String] = []
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            candidates.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent().path + "/" + name)
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/" + name)
        candidates.append(packageRoot + "/.build/debug/" + name)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw FixtureError("""
            the end-to-end tests need the \(name) binary, which is missing (looked in \(candidates.joined(separator: ", "))). \
            Build it first: `swift build` (make test does this before `swift test`).
            """)
    }
}

// MARK: The relay process

/// One `parley-relay serve` process. `start` waits (bounded) for its readiness banner; `stop` sends a
/// signal and waits for the exit; `restart` starts it again on the same port and data directory.
final class RelayProcess: @unchecked Sendable {
    let port: Int
    /// The host part of the relay's name (it always listens on 127.0.0.1).
    let publicHost: String
    let dataDirectory: String
    let arguments: [String]
    /// The open-file limit (soft and hard) the relay is started under, if not the test's own.
    let openFileLimit: Int?
    /// The CPUs (a `taskset -c` list) the relay may run on, if not all: Swift's cooperative thread pool
    /// is as wide as the CPUs the process may use.
    let cpus: String?
    private let logDirectory: String
    private let lock = Lock()
    private var process: Process?
    private var starts = 0

    /// The relay's name: the part after '@' in its addresses.
    var name: String { "\(publicHost):\(port)" }
    var listen: String { "127.0.0.1:\(port)" }
    var tls: Bool { arguments.contains("--tls-cert") }
    var baseURL: String { (tls ? "https://" : "http://") + name }

    private init(port: Int, publicHost: String, dataDirectory: String, logDirectory: String, arguments: [String], openFileLimit: Int?,
                 cpus: String?) {
        self.openFileLimit = openFileLimit
        self.cpus = cpus
        self.port = port
        self.publicHost = publicHost
        self.dataDirectory = dataDirectory
        self.logDirectory = logDirectory
        self.arguments = arguments
    }

    /// Starts a relay on a free port with its data under `directory`. A port taken between choosing and
    /// binding (another test) is retried with a new one.
    static func start(in directory: TemporaryDirectory, arguments: [String] = [], publicHost: String = "127.0.0.1",
                      openFileLimit: Int? = nil, cpus: String? = nil) async throws -> RelayProcess {
        var lastError: (any Error)?
        let arguments = try arguments + storageArguments(arguments)
        for _ in 0..<5 {
            let relay = RelayProcess(port: try freePort(), publicHost: publicHost, dataDirectory: directory.sub("relay-data"),
                                     logDirectory: directory.path, arguments: arguments, openFileLimit: openFileLimit, cpus: cpus)
            do {
                try await relay.launch()
                return relay
            } catch let error as RelayExited where error.status == 3 {
                lastError = error  // could not bind: try another port
            }
        }
        throw lastError ?? FixtureError("could not start the relay")
    }

    /// The storage the end-to-end relays use: the SQLite file in their data directory, unless
    /// PARLEY_TEST_STORAGE=postgres, when each relay gets a fresh database of the private PostgreSQL cluster
    /// (`--database`). Said once in the test output. Tests that are about the SQLite file itself (a full
    /// disk, a locked or damaged relay.sqlite, descriptors) are SQLite's alone and fail on PostgreSQL.
    static func storageArguments(_ arguments: [String]) throws -> [String] {
        let postgres = ProcessInfo.processInfo.environment["PARLEY_TEST_STORAGE"] == "postgres"
        storageAnnounced.withLock { announced in
            guard !announced else { return }
            announced = true
            let sqliteOnly = "RelayStorageSpaceTests, RelayStorageFaultTests and AttachmentPrivacyTests' database dump test the SQLite file itself"
            print(postgres ? "end-to-end relays run on PostgreSQL (PARLEY_TEST_STORAGE=postgres); \(sqliteOnly) and fail here"
                           : "end-to-end relays run on SQLite; PARLEY_TEST_STORAGE=postgres runs them on PostgreSQL (\(sqliteOnly)); the storage conformance and rules suites run on both, the shared-database suites on PostgreSQL")
        }
        guard postgres, !arguments.contains("--database") else { return [] }
        let cluster = try PostgresCluster.get()
        return ["--database", cluster.url(database: try cluster.database())]
    }

    private static let storageAnnounced = PostgresClusterState(false)

    /// Starts the stopped relay again, on the same port and data directory.
    func restart() async throws {
        // The old socket may linger briefly after a SIGKILL; binding again is retried.
        var lastError: (any Error)?
        for _ in 0..<20 {
            do { return try await launch() } catch let error as RelayExited where error.status == 3 {
                lastError = error
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        throw lastError!
    }

    struct RelayExited: Error, CustomStringConvertible {
        let status: Int32
        let log: String
        var description: String { "parley-relay exited with status \(status) before it was ready:\n\(log)" }
    }

    private func launch() async throws {
        let binary = try Binaries.path("parley-relay")
        let index = lock.withLock { starts += 1; return starts }
        let stdoutPath = logDirectory + "/relay-\(index).out", stderrPath = logDirectory + "/relay-\(index).err"
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let process = Process()
        let relayArguments = ["serve", "--listen", listen, "--data", dataDirectory, "--log-level", "info"]
            + (publicHost == "127.0.0.1" ? [] : ["--name", name]) + arguments
        // prlimit and taskset set the limit or the CPUs and execute the relay in their place (same process id).
        var command = [binary] + relayArguments
        if let cpus { command = ["/usr/bin/taskset", "-c", cpus] + command }
        if let openFileLimit { command = ["/usr/bin/prlimit", "--nofile=\(openFileLimit):\(openFileLimit)", "--"] + command }
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
        lock.withLock { self.process = process }
        let banner = "parley-relay: serving \(name) on \(tls ? "https" : "http")://\(listen)"
        do {
            try await eventually("the relay's banner on \(stdoutPath)", timeout: .seconds(60)) {
                if let text = try? String(contentsOfFile: stdoutPath, encoding: .utf8), text.contains(banner) { return true }
                if !process.isRunning {
                    let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                    throw RelayExited(status: process.terminationStatus, log: log)
                }
                return false
            }
        } catch {
            kill(SIGKILL)
            throw error
        }
    }

    var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// The running relay's process id (for /proc measurements).
    var processIdentifier: Int32? { lock.withLock { process.flatMap { $0.isRunning ? $0.processIdentifier : nil } } }

    /// Sends `signal` and waits (bounded) until the process has exited; returns its termination status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM) async throws -> Int32 {
        guard let process = lock.withLock({ self.process }) else { return 0 }
        if process.isRunning { Glibc.kill(process.processIdentifier, signal) }
        do {
            try await eventually("parley-relay (pid \(process.processIdentifier)) to exit after signal \(signal)", timeout: .seconds(30)) {
                !process.isRunning
            }
        } catch {
            throw FixtureError("\(error); its log:\n\(errorLog)")
        }
        return process.terminationStatus
    }

    /// Immediate, synchronous cleanup for the end of a test.
    func kill(_ signal: Int32 = SIGKILL) {
        guard let process = lock.withLock({ self.process }), process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
        process.waitForExitReaping()
    }

    /// What the relay wrote to standard error, over all its runs.
    var errorLog: String {
        (1...max(1, lock.withLock { starts })).compactMap { try? String(contentsOfFile: logDirectory + "/relay-\($0).err", encoding: .utf8) }
            .joined(separator: "\n")
    }

    deinit { kill() }

    /// A port nobody listens on right now (bound to port 0, read back, released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw FixtureError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Runs `body` with a fresh relay (own port, own data directory) and kills the relay afterwards.
func withRelay<R>(_ arguments: [String] = [], in directory: TemporaryDirectory? = nil,
                  _ body: (RelayProcess, TemporaryDirectory) async throws -> R) async throws -> R {
    let directory = try directory ?? TemporaryDirectory()
    let relay = try await RelayProcess.start(in: directory, arguments: arguments)
    defer { relay.kill() }
    return try await body(relay, directory)
}

// MARK: Client devices

/// One client device: an Engine over its own encrypted store (unlocked by a key file); see ParleyTestSupport.
typealias TestDevice = ClientDevice

extension ClientDevice {
    /// A device around `engine`, with the engine's own store.
    convenience init(engine: Engine, home: String) {
        self.init(engine: engine, store: engine.store, home: home)
    }

    static func endpoint(for relay: RelayProcess, caFile: String? = nil) throws -> RelayEndpoint {
        try RelayEndpoint(relay: relay.name, tls: relay.tls, caFile: caFile)
    }

    /// Creates the account `name@<relay>` with device 1 (registration and prekey upload included).
    static func create(_ name: String, on relay: RelayProcess, in directory: TemporaryDirectory,
                       caFile: String? = nil) async throws -> TestDevice {
        try await create(name, on: try RelayClient(endpoint: try endpoint(for: relay, caFile: caFile)), relayName: relay.name, in: directory)
    }

    /// Alice and Bob on one relay, each the other's contact: how most two-party tests begin.
    static func pair(on relay: RelayProcess, in directory: TemporaryDirectory) async throws
        -> (alice: TestDevice, bob: TestDevice, aliceAddress: AccountAddress, bobAddress: AccountAddress) {
        let alice = try await create("alice", on: relay, in: directory)
        let bob = try await create("bob", on: relay, in: directory)
        let aliceAddress = await alice.address, bobAddress = await bob.address
        try await alice.engine.addContact(bobAddress)
        try await bob.engine.addContact(aliceAddress)
        return (alice, bob, aliceAddress, bobAddress)
    }

    /// `pair`, and `count` messages from Alice queued for Bob ("<label> 1", "<label> 2", …).
    static func backlog(_ count: Int, _ label: String, on relay: RelayProcess, in directory: TemporaryDirectory) async throws
        -> (alice: TestDevice, bob: TestDevice, aliceAddress: AccountAddress, texts: [String]) {
        let (alice, bob, aliceAddress, bobAddress) = try await pair(on: relay, in: directory)
        let texts = (1...count).map { "\(label) \($0)" }
        for text in texts { try await alice.engine.send(text: text, to: bobAddress) }
        return (alice, bob, aliceAddress, texts)
    }

    /// A device started again from its home: the store opened from disk, a new Engine.
    static func open(home: String, on relay: RelayProcess, caFile: String? = nil) throws -> TestDevice {
        let store = try EncryptedStore.open(at: home + "/parley.db", unlock: .keyFile(path: home + "/key"))
        let engine = try Engine(store: store, relay: try RelayClient(endpoint: try endpoint(for: relay, caFile: caFile)))
        return TestDevice(engine: engine, home: home)
    }

    /// Records of envelopes that could not be read (kept in history instead of being dropped).
    func failures(in conversation: AccountAddress) throws -> [MessageRecord] {
        try history(with: conversation).filter { $0.state == .failed && $0.text.contains("could not be decrypted") }
    }
}

// MARK: A second device

extension TestDevice {
    /// Adds device `deviceId` to this device's account: publishes a newer device list signed by the
    /// account key (PUT /v1/accounts/{address}/devices), creates the new device's store and uploads its
    /// prekeys.
    func addDevice(_ deviceId: UInt32, on relay: RelayProcess, in directory: TemporaryDirectory) async throws -> TestDevice {
        try await addDevice(deviceId, in: directory)
    }
}

/// Bundles straight from the relay's directory, for attackers built from the protocol layer.
struct RelayDirectory: PreKeyBundleSource {
    let relay: RelayClient
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        try PreKeyBundle(decoding: try await relay.bundle(address: device.address, deviceId: device.deviceId).bundle.bytes)
    }
}

// MARK: Raw HTTP

/// Requests the client library would never send: hand-made bodies, other devices' tokens, bursts.
struct RawHTTP: Sendable {
    let baseURL: String

    /// Kept for the life of the test process; a refused connection fails at once instead of being retried.
    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    init(_ relay: RelayProcess) { baseURL = relay.baseURL }

    struct Reply: Sendable {
        let status: Int
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }
        /// The `error` code of an ErrorBody reply.
        var errorCode: String? { (try? decode(ErrorBody.self))?.error }
    }

    func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, token: String? = nil,
                 headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await Self.client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), body: [UInt8](buffer.readableBytesView))
    }

    func request<B: Encodable>(_ method: HTTPMethod, _ path: String, json: B, token: String? = nil,
                               headers: [(String, String)] = []) async throws -> Reply {
        try await request(method, path, body: [UInt8](try JSONEncoder().encode(json)), token: token, headers: headers)
    }

    /// The queued envelopes of the device `token` belongs to (without acknowledging them).
    func mailbox(token: String) async throws -> [QueuedMessage] {
        let reply = try await request(.GET, "/v1/mailbox?limit=500", token: token)
        guard reply.status == 200 else { throw FixtureError("GET /v1/mailbox answered \(reply.status): \(reply.text)") }
        return try reply.decode(FetchResponse.self).messages
    }

    /// Acknowledges everything queued for the device `token` belongs to.
    func acknowledgeAll(token: String) async throws {
        let ids = try await mailbox(token: token).map(\.id)
        let reply = try await request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: ids), token: token)
        guard reply.status == 204 else { throw FixtureError("POST /v1/mailbox/ack answered \(reply.status): \(reply.text)") }
    }

    func messagesPath(_ address: String) -> String {
        "/v1/messages/" + (address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? address)
    }

    func accountPath(_ address: String) -> String {
        "/v1/accounts/" + (address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? address)
    }
}

// MARK: Child processes (the CLI, openssl)

struct ProcessResult: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String
    var summary: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs an executable to completion (bounded) with its output captured in files.
func run(_ executable: String, _ arguments: [String], in directory: TemporaryDirectory,
         environment: [String: String] = [:], standardInput: String? = nil, timeout: Duration = .seconds(90)) async throws -> ProcessResult {
    let id = UUID().uuidString.prefix(8)
    let outPath = directory.sub("run-\(id).out"), errPath = directory.sub("run-\(id).err")
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["LANG"] = env["LANG"] ?? "C.UTF-8"
    env["PARLEY_PASSPHRASE"] = nil
    for (key, value) in environment { env[key] = value }
    process.environment = env
    if let standardInput {
        let inPath = directory.sub("run-\(id).in")
        FileManager.default.createFile(atPath: inPath, contents: Data(standardInput.utf8))
        process.standardInput = FileHandle(forReadingAtPath: inPath)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    try process.run()
    do {
        try await eventually("\(executable) \(arguments.joined(separator: " ")) to exit", timeout: timeout) { !process.isRunning }
    } catch {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitForExitReaping()
        throw error
    }
    return ProcessResult(status: process.terminationStatus,
                         stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// The openssl command line tool; its absence fails the TLS test (install the `openssl` package).
func opensslPath() throws -> String {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
    for directory in path + ["/usr/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: directory + "/openssl") {
        return directory + "/openssl"
    }
    throw FixtureError("the TLS end-to-end test needs the `openssl` command (Debian: apt-get install openssl)")
}

/// The direct conversation with `address`.
func direct(_ address: String) -> ConversationId { try! ConversationId(destination: address) }
func direct(_ address: AccountAddress) -> ConversationId { .direct(address) }
