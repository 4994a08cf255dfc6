import Foundation
import Testing
import ParleyTestSupport
#if canImport(Glibc)
import Glibc
#endif

// Fixtures of the headless end-to-end tests: `parley` homes made with the CLI, a `parley daemon`
// process, and a JSON-RPC client on its Unix socket. Waits are bounded polls on conditions.

/// A `parley` home unlocked by a key file next to it.
struct CLIHome: Sendable {
    let parley: String
    let path: String
    let directory: TemporaryDirectory
    var keyFile: String { path + ".key" }
    var options: [String] { ["--home", path, "--key-file", keyFile] }

    func run(_ arguments: [String]) async throws -> ProcessResult {
        try await ParleyRelayTests.run(parley, arguments + options, in: directory)
    }

    /// Runs a command that must succeed.
    @discardableResult
    func must(_ arguments: [String]) async throws -> ProcessResult {
        let result = try await run(arguments)
        guard result.status == 0 else { throw FixtureError("parley \(arguments.joined(separator: " ")) failed: \(result.summary)") }
        return result
    }

    static func create(_ name: String, on relay: RelayProcess, in directory: TemporaryDirectory) async throws -> CLIHome {
        let home = CLIHome(parley: try Binaries.path("parley"), path: directory.sub(name), directory: directory)
        try await home.must(["init", "\(name)@\(relay.name)"])
        return home
    }

    /// Two homes on `relay`, each with the other as a contact, and their addresses (as TestDevice.pair).
    static func pair(_ first: String, _ second: String, on relay: RelayProcess, in directory: TemporaryDirectory) async throws
        -> (CLIHome, CLIHome, firstAddress: String, secondAddress: String) {
        let one = try await create(first, on: relay, in: directory), two = try await create(second, on: relay, in: directory)
        let (oneAddress, twoAddress) = ("\(first)@\(relay.name)", "\(second)@\(relay.name)")
        try await one.must(["add-contact", twoAddress])
        try await two.must(["add-contact", oneAddress])
        return (one, two, oneAddress, twoAddress)
    }
}

/// A child process whose output goes to files in the test's directory; killed when released.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let outPath: String
    let errPath: String

    init(_ executable: String, _ arguments: [String], in directory: TemporaryDirectory, environment: [String: String] = [:]) throws {
        let id = UUID().uuidString.prefix(8)
        outPath = directory.sub("child-\(id).out")
        errPath = directory.sub("child-\(id).err")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["PARLEY_PASSPHRASE"] = nil
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Sends `signal`, then waits (bounded) for the exit; returns the status.
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM) async throws -> Int32 {
        if process.isRunning { Glibc.kill(process.processIdentifier, signal) }
        try await eventually("process \(process.processIdentifier) to exit") { !process.isRunning }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            Glibc.kill(-process.processIdentifier, SIGKILL)
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitForExitReaping()
        }
    }
}

/// `parley daemon --socket PATH` for a home; `start` waits until the socket answers.
final class DaemonProcess: @unchecked Sendable {
    let home: CLIHome
    let socket: String
    /// With an HTTP port, the daemon also serves signal-cli's HTTP endpoint on 127.0.0.1 there.
    let httpPort: Int?
    private(set) var child: ChildProcess?

    init(home: CLIHome, httpPort: Int? = nil) {
        self.home = home
        self.httpPort = httpPort
        socket = home.path + ".sock"
    }

    func start() async throws {
        let http = httpPort.map { ["--http", "127.0.0.1:\($0)"] } ?? []
        let child = try ChildProcess(home.parley, ["daemon", "--socket", socket] + http + home.options, in: home.directory)
        self.child = child
        try await eventually("the daemon to listen on \(socket) (stderr: \(child.stderr))") {
            guard child.process.isRunning else { throw FixtureError("the daemon exited: \(child.stderr)") }
            return (try? RPCClient(socket: socket)) != nil
        }
    }

    func stop() async throws {
        let status = try await child?.stop()
        #expect(status == 0, "daemon exit status")
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file is removed on SIGTERM")
    }
}

/// A JSON-RPC client on the daemon's Unix socket. Reads time out after a while so a broken daemon fails
/// the test instead of hanging it.
final class RPCClient: @unchecked Sendable {
    private let fd: Int32
    private var buffer = [UInt8]()
    private var nextId = 0

    init(socket path: String) throws {
        fd = try ConnectedSocket.unix(path: path)
    }

    deinit { Glibc.close(fd) }

    func writeLine(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    /// Sends a request; returns its id.
    @discardableResult
    func request(_ method: String, _ params: [String: Any] = [:]) throws -> Int {
        nextId += 1
        let data = try JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "id": nextId, "method": method, "params": params])
        writeLine(String(decoding: data, as: UTF8.self))
        return nextId
    }

    /// The next line as an object. Polls without blocking (a blocked read would hold a thread of the
    /// test's concurrency pool); gives up after 60 s without a line.
    func readObject() async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<newline])
                buffer.removeSubrange(...newline)
                guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                    throw FixtureError("not a JSON object: \(String(decoding: line, as: UTF8.self))")
                }
                return object
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                buffer += chunk[..<n]
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else {
                throw FixtureError("the daemon closed the connection or sent nothing in time")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Notifications read while waiting for a response, kept for `nextMessage`.
    private var held: [[String: Any]] = []

    /// Calls `method` and returns the response (result or error object); notifications meanwhile are kept.
    func call(_ method: String, _ params: [String: Any] = [:]) async throws -> [String: Any] {
        let id = try request(method, params)
        while true {
            let object = try await readObject()
            if object["id"] as? Int == id { return object }
            held.append(object)
        }
    }

    func result(_ method: String, _ params: [String: Any] = [:]) async throws -> Any {
        let response = try await call(method, params)
        guard let result = response["result"] else { throw FixtureError("\(method) failed: \(response)") }
        return result
    }

    /// The next `receive` notification with a dataMessage: (id, source, text).
    func nextMessage() async throws -> (id: String, source: String, text: String) {
        while true {
            let object = held.isEmpty ? try await readObject() : held.removeFirst()
            guard object["method"] as? String == "receive", let params = object["params"] as? [String: Any],
                  let envelope = params["envelope"] as? [String: Any], let data = envelope["dataMessage"] as? [String: Any] else { continue }
            return (data["id"] as? String ?? "", envelope["source"] as? String ?? "", data["message"] as? String ?? "")
        }
    }
}
