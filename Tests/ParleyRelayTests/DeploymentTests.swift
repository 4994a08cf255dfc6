import AsyncHTTPClient
import Foundation
import NIOCore
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// deploy/: the HAProxy configuration is valid, and in front of relay processes on loopback it serves
/// /v1/health, passes a push WebSocket through, and keeps a dead node out of the way; the systemd unit
/// keeps its hardening and names only options parley-relay has.
/// HAProxy comes from Debian (`make deps` installs it): a missing haproxy is a failure, not a skip.
@Suite struct DeploymentTests {
    static let deploy = Binaries.packageRoot + "/deploy"

    @Test func haproxyConfigurationIsValid() async throws {
        let haproxy = try Self.haproxy()
        for environment in [[:], ["PARLEY_BIND": "127.0.0.1:1", "PARLEY_NODE1": "127.0.0.1:2", "PARLEY_NODE2": "127.0.0.1:3",
                                  "PARLEY_NODE3": "127.0.0.1:4", "PARLEY_CHECK_INTER": "500ms", "PARLEY_MAXCONN": "4000"]] {
            let (status, output) = try await offCooperativeThreads { try Self.run(haproxy, ["-c", "-f", Self.deploy + "/haproxy.cfg"], environment: environment) }
            #expect(status == 0, "haproxy -c -f deploy/haproxy.cfg with \(environment): \(output)")
        }
    }

    @Test func systemdUnitIsHardenedAndUsesRealOptions() async throws {
        let unit = try String(contentsOfFile: Self.deploy + "/parley-relay@.service", encoding: .utf8)
        for line in ["DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=parley-relay", "LimitNOFILE=", "Restart=on-failure",
                     "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"] {
            #expect(unit.contains(line), "the unit has \(line)")
        }
        // Every option ExecStart gives (and those the guide puts in PARLEY_RELAY_OPTIONS) is one `serve` knows.
        let relay = try Binaries.path("parley-relay")
        let help = try await offCooperativeThreads { try Self.run(relay, ["serve", "--help"]) }.output
        let commandLines = unit.split(separator: "\n").filter { $0.hasPrefix("ExecStart=") || $0.hasPrefix("    --") || $0.contains("PARLEY_RELAY_OPTIONS=") }
        let options = Set(commandLines.flatMap { $0.matches(of: /--[a-z][a-z-]+/).map { String($0.output) } })
        #expect(options.contains("--database") && options.contains("--metrics"))
        for option in options { #expect(help.contains(option + " "), "parley-relay serve has no \(option)") }
    }

    /// systemd's own check of the unit (the instance `@1`, with the relay built here in its ExecStart): no
    /// unknown or misplaced setting, nothing it would ignore. systemd-analyze is Debian's systemd package,
    /// which `make deps` installs.
    @Test func systemdAcceptsTheUnit() async throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else {
            throw FixtureError("\(analyze) is missing; `make deps` installs Debian's systemd package")
        }
        let directory = try TemporaryDirectory("unit")
        let unit = try String(contentsOfFile: Self.deploy + "/parley-relay@.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/parley-relay", with: try Binaries.path("parley-relay"))
        try unit.write(toFile: directory.sub("parley-relay@.service"), atomically: true, encoding: .utf8)
        let instance = directory.sub("parley-relay@1.service")
        let (status, output) = try await offCooperativeThreads { try Self.run(analyze, ["verify", "--man=no", instance]) }
        #expect(status == 0 && output.isEmpty, "systemd-analyze verify: \(output)")
    }

    /// Two SQLite relays and a third address where nothing listens, behind deploy/haproxy.cfg on loopback.
    /// Health checks pass through; with one node killed and one never there, registration, sign-in, a push
    /// connection and the wake it gets when mail arrives all work through the proxy.
    @Test func haproxyInFrontOfRelays() async throws {
        let haproxy = try Self.haproxy()
        let directory = try TemporaryDirectory("haproxy")
        let front = try RelayProcess.freePort()
        let name = "127.0.0.1:\(front)"
        let nodes = try (0..<2).map { index in
            try Child.start(try Binaries.path("parley-relay"), ["serve", "--listen", "127.0.0.1:\(try RelayProcess.freePort())",
                                                                "--name", name, "--data", directory.sub("node\(index)"), "--trusted-proxy", "127.0.0.1"],
                            logs: directory.sub("node\(index)"), ready: "parley-relay: serving \(name)")
        }
        let nodeAddresses = nodes.map { $0.arguments[2] }
        let proxy = try Child.start(haproxy, ["-db", "-f", Self.deploy + "/haproxy.cfg"], logs: directory.sub("haproxy"), ready: nil,
                                    environment: ["PARLEY_BIND": name, "PARLEY_NODE1": nodeAddresses[0], "PARLEY_NODE2": nodeAddresses[1],
                                                  "PARLEY_NODE3": "127.0.0.1:\(try RelayProcess.freePort())", "PARLEY_CHECK_INTER": "200ms",
                                                  // (this machine's open-file limit may be below the 120,000 the default needs)
                                                  "PARLEY_MAXCONN": "4000"])
        for node in nodes { try await node.waitUntilReady() }
        let http = RawHTTP(baseURL: "http://" + name)
        try await eventually("HAProxy to answer /v1/health") {
            try proxy.requireRunning()
            return (try? await http.request(.GET, "/v1/health"))?.status == 200
        }
        for _ in 0..<6 {
            let health = try await http.request(.GET, "/v1/health")
            #expect(health.status == 200)
            #expect(try health.decode(HealthResponse.self).name == name)
        }

        // One node killed: everything from here on must reach the other one.
        nodes[1].kill()
        let key = Ed25519.KeyPair(), accountKey = Ed25519.KeyPair()
        let address = "bob@\(name)"
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: key.publicKey, createdAt: 1)], version: 1, accountKey: accountKey)
        let registered = try await http.request(.POST, "/v1/accounts", json: RegisterRequest(
            address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes), deviceList: Base64Bytes(list.encoded)))
        #expect(registered.status == 201, "\(registered.text)")
        let challenge = try await http.request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: address, deviceId: 1))
        let bytes = try challenge.decode(ChallengeResponse.self).challenge.bytes
        let session = try await http.request(.POST, "/v1/auth/session", json: SessionRequest(
            address: address, deviceId: 1, challenge: Base64Bytes(bytes),
            signature: Base64Bytes(key.sign(authenticationMessage(challenge: bytes, relayName: name)))))
        let token = try session.decode(SessionResponse.self).token

        // The push WebSocket through the proxy: the relay's first wake on connect, then one for the message.
        let socket = try LoopbackSocket(port: front)
        try socket.send("GET /v1/push HTTP/1.1\r\nHost: \(name)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                        + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer \(token)\r\n\r\n")
        var received = ""
        func wakes() -> Int { received.components(separatedBy: RelayAPI.wakeToken).count - 1 }
        while wakes() < 1, let chunk = try socket.receive(timeoutSeconds: 30), !chunk.isEmpty { received += String(decoding: chunk, as: UTF8.self) }
        #expect(received.hasPrefix("HTTP/1.1 101"), "the upgrade passed through: \(received.prefix(60))")
        #expect(wakes() == 1)
        let message = OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key.publicKey.bytes), envelope: Base64Bytes(Array("sealed".utf8)))
        #expect(try await http.request(.POST, http.messagesPath(address), json: SendRequest(messages: [message])).status == 204)
        while wakes() < 2, let chunk = try socket.receive(timeoutSeconds: 30), !chunk.isEmpty { received += String(decoding: chunk, as: UTF8.self) }
        #expect(wakes() == 2, "the message's wake came through the proxy")
        #expect(try await http.mailbox(token: token).count == 1)
        socket.close()
        proxy.kill()
    }

    // MARK: Helpers

    /// Debian's haproxy; its absence fails the test (`make deps` installs it).
    static func haproxy() throws -> String {
        let candidates = ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw FixtureError("haproxy is not installed (looked in \(candidates.joined(separator: ", "))); `make deps` installs it")
        }
        return found
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

/// A process of the test's (a relay node, HAProxy) with its output in files, killed when released.
final class Child: @unchecked Sendable {
    let arguments: [String]
    private let process = Process()
    private let stdoutPath: String
    private let stderrPath: String
    private let ready: String?

    private init(arguments: [String], stdoutPath: String, stderrPath: String, ready: String?) {
        self.arguments = arguments
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.ready = ready
    }

    /// Starts `executable`; `ready` is the text its standard output shows once it serves.
    static func start(_ executable: String, _ arguments: [String], logs: String, ready: String?,
                      environment: [String: String] = [:]) throws -> Child {
        let child = Child(arguments: arguments, stdoutPath: logs + ".out", stderrPath: logs + ".err", ready: ready)
        _ = FileManager.default.createFile(atPath: child.stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: child.stderrPath, contents: nil)
        child.process.executableURL = URL(fileURLWithPath: executable)
        child.process.arguments = arguments
        child.process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        child.process.standardInput = FileHandle.nullDevice
        child.process.standardOutput = FileHandle(forWritingAtPath: child.stdoutPath)
        child.process.standardError = FileHandle(forWritingAtPath: child.stderrPath)
        try child.process.run()
        return child
    }

    func waitUntilReady() async throws {
        guard let ready else { return }
        try await eventually("\(arguments.prefix(3).joined(separator: " ")) to print '\(ready)'") {
            if let text = try? String(contentsOfFile: stdoutPath, encoding: .utf8), text.contains(ready) { return true }
            try requireRunning()
            return false
        }
    }

    /// Throws, with what the process wrote to standard error, once it has exited.
    func requireRunning() throws {
        guard !process.isRunning else { return }
        let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        throw FixtureError("\(process.executableURL?.lastPathComponent ?? "") exited with \(process.terminationStatus): \(log)")
    }

    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { kill() }
}

extension RawHTTP {
    init(baseURL: String) { self.baseURL = baseURL }
}
