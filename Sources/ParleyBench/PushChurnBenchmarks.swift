import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
#if canImport(Glibc)
import Glibc
#endif

/// What push connections cost a relay, measured on a `parley-relay` process of its own (the binary
/// beside parley-bench), so that no client allocation is counted: its anonymous memory (RssAnon) is read
/// from /proc.
///
///   relay_push_churn  `devices` devices, each cycle: connect /v1/push, read the first wake, close (a close
///                     frame, then the socket). After `warmUpCycles`, `phases` phases of `cycles` cycles;
///                     retained_bytes_per_connection is the growth over the phases divided by their
///                     cycles, both readings taken after 65 s of quiet (≈ 0 when nothing is kept per
///                     connection; glibc's heap may move by a few pages either way); rss_anon_kb are the
///                     readings right after each phase
///   relay_push_held   `held` push connections open at once (one per device): memory per connection, and
///                     whether all were held
///
/// Overrides from PARLEY_BENCH_PUSH="key=value,…" (devices, cycles, phases, warm_up, held, workers; and
/// port with pid to churn a relay already running, such as one under heaptrack, started with
/// --no-rate-limit).
struct PushChurnBenchmarks {
    var devices = 200
    var cycles = 20_000
    var phases = 3
    var warmUpCycles = 5_000
    var held = 2_000
    var workers = 8
    var externalPort: Int?
    var externalPid: Int32?

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        for (key, number) in benchOverrides("PARLEY_BENCH_PUSH", in: environment) {
            guard number >= 0, let value = Int(exactly: number) else { continue }
            switch key {
            case "devices": devices = max(1, value)
            case "cycles": cycles = max(1, value)
            case "phases": phases = max(1, value)
            case "warm_up": warmUpCycles = value
            case "held": held = value
            case "workers": workers = max(1, value)
            case "port": externalPort = value
            case "pid": externalPid = Int32(value)
            default: continue
            }
        }
    }

    func run() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-bench-push-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let relay = if let externalPort, let externalPid {
                try await ChildRelay.attach(port: externalPort, pid: externalPid)
            } else {
                try await ChildRelay.start(directory: directory)
            }
            defer { relay.stop() }
            let tokens = try await relay.registerDevices(max(devices, held))
            churn(relay, tokens: Array(tokens.prefix(devices)))
            if held > 0 { hold(relay, tokens: Array(tokens.prefix(held))) }
        } catch {
            var line = JSONLine(name: "relay_push_error")
            line.add("error", .string("\(error)"))
            print(line.text)
        }
    }

    private func churn(_ relay: ChildRelay, tokens: [String]) {
        var line = JSONLine(name: "relay_push_churn")
        line.add("devices", .int(tokens.count))
        line.add("warm_up_cycles", .int(warmUpCycles))
        let failures = Counter()
        if warmUpCycles > 0 { cycle(warmUpCycles, relay: relay, tokens: tokens, failures: failures) }
        settle(quiet: true)
        let before = relay.anonymousKB()
        var readings: [Int] = [before]
        let started = Measure.now()
        for _ in 0..<phases {
            cycle(cycles, relay: relay, tokens: tokens, failures: failures)
            settle()
            readings.append(relay.anonymousKB())
        }
        let seconds = Double(Measure.now() - started) / 1e9
        settle(quiet: true)
        let quiet = relay.anonymousKB()
        line.add("cycles_per_phase", .int(cycles))
        line.add("rss_anon_kb", .strings(readings.map(String.init)))
        line.add("growth_kb_per_phase", .strings(zip(readings.dropFirst(), readings).map { String($0 - $1) }))
        line.add("rss_anon_quiet_kb", .int(quiet))
        let retained = Double(quiet - before) * 1024 / Double(cycles * phases)
        line.add("retained_bytes_per_connection", .number(retained))
        line.add("cycles_per_s", .number(Double(cycles * phases) / seconds))
        line.add("failed_cycles", .int(failures.value))
        if let load = loadAverage() { line.add("loadavg_1m", .number(load)) }
        print(line.text)
    }

    private func hold(_ relay: ChildRelay, tokens: [String]) {
        var line = JSONLine(name: "relay_push_held")
        settle()
        let before = relay.anonymousKB()
        var sockets: [Int32] = []
        for token in tokens {
            guard let fd = try? PushCycle.open(port: relay.port, host: relay.name, token: token) else { break }
            sockets.append(fd)
        }
        settle()
        let after = relay.anonymousKB()
        line.add("asked", .int(tokens.count))
        line.add("held", .int(sockets.count))
        line.add("rss_anon_before_kb", .int(before))
        line.add("rss_anon_held_kb", .int(after))
        if !sockets.isEmpty { line.add("bytes_per_connection", .number(Double(after - before) * 1024 / Double(sockets.count))) }
        for fd in sockets { close(fd) }
        print(line.text)
    }

    /// `count` connect-wake-close cycles spread over `workers` threads, each over its share of the devices
    /// (a device is never connected twice at once: that would displace, not churn).
    private func cycle(_ count: Int, relay: ChildRelay, tokens: [String], failures: Counter) {
        let workers = min(workers, tokens.count)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let mine = stride(from: worker, to: tokens.count, by: workers).map { tokens[$0] }
            var done = 0, index = 0
            while done < count / workers + (worker < count % workers ? 1 : 0) {
                do {
                    let fd = try PushCycle.open(port: relay.port, host: relay.name, token: mine[index % mine.count])
                    PushCycle.closeGracefully(fd)
                } catch {
                    failures.add()
                }
                done += 1
                index += 1
            }
        }
    }

    /// Lets the relay finish closing what the last cycles left (its close handshakes and task ends); a
    /// quiet settle also outlasts the 30 s ping interval (a closed connection's ping task is cancelled at
    /// once, but the runtime frees its sleep only when the sleep's deadline passes, so a reading taken
    /// sooner counts up to 30 s of churn that is on its way out) and the relay's once-a-minute sweep,
    /// which hands freed heap memory back to the system.
    private func settle(quiet: Bool = false) { usleep(quiet ? 65_000_000 : 1_500_000) }
}

final class Counter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    /// The count before this call, which counts itself: a number no other caller gets.
    func next() -> Int { lock.withLock { defer { count += 1 }; return count } }
    var value: Int { lock.withLock { count } }
}

/// One push connection on a blocking socket: the upgrade, the first wake, and a client close.
enum PushCycle {
    struct Failed: Error, CustomStringConvertible { let description: String }

    /// Connects, upgrades and waits for the first `wake`; returns the socket.
    static func open(port: Int, host: String, token: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failed(description: "socket: \(errno)") }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw Failed(description: "connect: \(errno)") }
        let request = "GET /v1/push HTTP/1.1\r\nHost: \(host)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer \(token)\r\n\r\n"
        guard request.withCString({ send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }) > 0 else { close(fd); throw Failed(description: "send") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        // The 101 head, then a text frame "wake" (0x81 0x04 w a k e).
        while !(received.starts(with: Array("HTTP/1.1 101".utf8)) && received.suffix(4) == Array("wake".utf8)) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { close(fd); throw Failed(description: "closed before the wake") }
            received += buffer.prefix(count)
            guard received.count < 4096 else { close(fd); throw Failed(description: "no wake") }
        }
        return fd
    }

    /// A masked close frame (code 1000), then the socket is closed.
    static func closeGracefully(_ fd: Int32) {
        let mask: [UInt8] = [1, 2, 3, 4]
        let payload: [UInt8] = [0x03, 0xE8]
        let frame: [UInt8] = [0x88, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        _ = frame.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
    }
}

/// A `parley-relay serve` child process on a free loopback port, rate limits off.
final class ChildRelay: @unchecked Sendable {
    let process: Process?
    let pid: Int32
    let port: Int
    /// The relay's name (`--name`, the host part of its addresses): the address it listens on unless
    /// several nodes share one name.
    let name: String
    /// Where it listens (how a client reaches this process).
    var listen: String { "127.0.0.1:\(port)" }

    private init(process: Process?, pid: Int32, port: Int, name: String? = nil) {
        self.process = process
        self.pid = pid
        self.port = port
        self.name = name ?? "127.0.0.1:\(port)"
    }

    /// A relay this benchmark did not start (and will not stop).
    static func attach(port: Int, pid: Int32) async throws -> ChildRelay {
        ChildRelay(process: nil, pid: pid, port: port)
    }

    /// `name`: the relay name to serve (`--name`); `arguments` are added to `serve`'s (`--database`, …).
    static func start(directory: String, name: String? = nil, arguments: [String] = []) async throws -> ChildRelay {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path + "/parley-relay"
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw BenchError("no parley-relay beside parley-bench (\(binary))") }
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--data", directory + "/relay", "--no-rate-limit", "--log-level", "error"]
            + (name.map { ["--name", $0] } ?? []) + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let relay = ChildRelay(process: process, pid: process.processIdentifier, port: port, name: name)
        let client = try RelayClient(endpoint: try RelayEndpoint(relay: relay.listen))
        for _ in 0..<600 {
            if (try? await client.health()) != nil { return relay }
            guard process.isRunning else { throw BenchError("parley-relay exited with \(process.terminationStatus)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        relay.stop()
        throw BenchError("parley-relay did not answer on \(relay.listen)")
    }

    /// `count` accounts of one device each, signed in: their tokens.
    func registerDevices(_ count: Int) async throws -> [String] {
        try await registerAccounts(count).map(\.token)
    }

    /// `count` accounts `<prefix><index>@<name>` of one device each, signed in.
    func registerAccounts(_ count: Int, prefix: String = "push") async throws -> [(address: String, deviceKey: [UInt8], token: String)] {
        let client = try RelayClient(endpoint: try RelayEndpoint(relay: listen))
        var accounts: [(address: String, deviceKey: [UInt8], token: String)] = []
        for index in 0..<count {
            let accountKey = Ed25519.KeyPair(), key = Ed25519.KeyPair()
            let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: key.publicKey, createdAt: 1)], version: 1, accountKey: accountKey)
            let address = "\(prefix)\(index)@\(name)"
            _ = try await client.register(RegisterRequest(address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                          deviceList: Base64Bytes(list.encoded)))
            let challenge = try await client.challenge(ChallengeRequest(address: address, deviceId: 1)).challenge.bytes
            let signature = key.sign(authenticationMessage(challenge: challenge, relayName: name))
            let token = try await client.session(SessionRequest(address: address, deviceId: 1, challenge: Base64Bytes(challenge),
                                                                 signature: Base64Bytes(signature))).token
            accounts.append((address, key.publicKey.bytes, token))
        }
        return accounts
    }

    /// The relay's anonymous resident memory (RssAnon), in KiB.
    func anonymousKB() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("RssAnon:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return -1
    }

    /// SIGTERM, and SIGKILL if it has not exited 15 s later (a relay that hangs must not hang the bench).
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<1_500 where process.isRunning { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
