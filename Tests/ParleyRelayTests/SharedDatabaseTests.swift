import AsyncHTTPClient
import Foundation
import NIOHTTP1
import ParleyCrypto
@testable import ParleyClient
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Relay nodes as separate `parley-relay serve --database` processes on one PostgreSQL database (the test
/// process's private cluster): what one node stores, decides or wakes is seen by the others.
@Suite("Relay nodes sharing one PostgreSQL database")
struct SharedDatabaseTests {
    /// The name every node serves (accounts are `name@relay.test`); clients reach the nodes by port.
    static let relayName = "relay.test"

    @Test("a message sent through node A wakes the device's push connection on node B, and is fetched there; a revocation through A ends it")
    func wakeAcrossNodes() async throws {
        try await withNodes(2) { nodes, directory in
            let (a, b) = (RawHTTP(baseURL: nodes[0].baseURL), RawHTTP(baseURL: nodes[1].baseURL))
            let bob = try await RawAccount.register("bob", via: a)
            let token = try await bob.token(via: b)
            let push = PushRecorder()
            let listener = Task {
                do {
                    try await PushSocket.run(url: "ws://127.0.0.1:\(nodes[1].port)/v1/push", authorization: "Bearer " + token, tls: nil) { text in
                        push.record(text)
                    }
                } catch {}
                push.closed()
            }
            defer { listener.cancel() }
            // The push connection is up once its first wake (sent when it opens, for mail already queued) or
            // a moment has passed; the send below must arrive after it subscribed either way.
            try await Task.sleep(for: .milliseconds(500))
            let before = push.wakes
            try await bob.receive([7, 7, 7], via: a)
            try await eventually("bob's push connection on node B to be woken by a send through node A", timeout: .seconds(20)) {
                push.wakes > before
            }
            #expect(try await b.mailbox(token: token).map(\.envelope.bytes) == [[7, 7, 7]])

            // Bob's device gets a new key (a restore): the list goes through node A; B ends the push connection.
            try await bob.replaceDeviceKey(via: a)
            try await eventually("node B to end the revoked device's push connection", timeout: .seconds(20)) { push.isClosed }
            #expect(try await b.request(.GET, "/v1/mailbox", token: token).status == 401)
        }
    }

    @Test("two nodes racing for one one-time prekey, one challenge or one provisioning slot: exactly one wins")
    func racesAcrossNodes() async throws {
        try await withNodes(2) { nodes, _ in
            let http = nodes.map { RawHTTP(baseURL: $0.baseURL) }
            let alice = try await RawAccount.register("alice", via: http[0])
            let token = try await alice.token(via: http[1])
            let keys = LocalPreKeys.generate(oneTime: 1)
            var upload = preKeyUpload(keys, identity: DeviceIdentity(deviceId: 1, keyPair: alice.device))
            upload = PreKeyUpload(signedPreKey: upload.signedPreKey, lastResortPQPreKey: upload.lastResortPQPreKey,
                                  oneTimePreKeys: Array(upload.oneTimePreKeys.prefix(1)), oneTimePQPreKeys: [])
            #expect(try await http[0].request(.PUT, "/v1/keys", json: upload, token: token).status == 204)

            // Ten bundle fetches, five on each node, at once: one of them carries the one-time prekey.
            let bundles = try await withThrowingTaskGroup(of: UInt32.self) { group in
                for n in 0..<10 {
                    group.addTask {
                        let reply = try await http[n % 2].request(.GET, "/v1/keys/\(alice.address)/1")
                        try #require(reply.status == 200, "\(reply.status): \(reply.text)")
                        return try PreKeyBundle(decoding: try reply.decode(BundleResponse.self).bundle.bytes).oneTimePreKeyId
                    }
                }
                return try await group.reduce(into: [UInt32]()) { $0.append($1) }
            }
            #expect(bundles.filter { $0 != 0 }.count == 1)

            // One signed challenge presented to both nodes at once: one session.
            let challenge = try await http[0].request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: alice.address, deviceId: 1))
                .decode(ChallengeResponse.self).challenge.bytes
            let signed = SessionRequest(address: alice.address, deviceId: 1, challenge: Base64Bytes(challenge),
                                        signature: Base64Bytes(alice.device.sign(authenticationMessage(challenge: challenge, relayName: Self.relayName))))
            let sessions = try await both(http) { try await $0.request(.POST, "/v1/auth/session", json: signed).status }
            #expect(sessions.sorted() == [200, 401])

            // One provisioning slot filled through both nodes at once, then collected through both at once.
            let slot = try await http[1].request(.POST, "/v1/provisioning").decode(ProvisioningSlot.self)
            let fills = try await both(http) { node in
                try await node.request(.PUT, "/v1/provisioning/\(slot.id)", json: ProvisioningMessage(message: Base64Bytes(SystemRandom().bytes(64))),
                                       token: token).status
            }
            #expect(fills.sorted() == [204, 404])
            let takes = try await both(http) { try await $0.request(.GET, "/v1/provisioning/\(slot.id)").status }
            // One collector gets the message; the other finds no slot (or, on PostgreSQL, having read before
            // the winner committed, hears it is still waiting).
            #expect(takes.filter { $0 == 200 }.count == 1 && takes.allSatisfy { [200, 204, 404].contains($0) })
        }
    }

    @Test("PostgreSQL stopped mid-stream: the nodes answer 503 database_unavailable meanwhile, senders retry, nothing is lost or doubled")
    func databaseRestart() async throws {
        // A cluster of its own: stopping the shared one would fail the tests running beside this one.
        let cluster = try await PostgresCluster.startPrivate()
        defer { cluster.destroy() }
        try await withNodes(2, cluster: cluster) { nodes, _ in
            let (a, b) = (RawHTTP(baseURL: nodes[0].baseURL), RawHTTP(baseURL: nodes[1].baseURL))
            let carol = try await RawAccount.register("carol", via: a)
            let token = try await carol.token(via: b)
            let refusals = Counter()
            let sender = Task {
                for n in 0..<200 {
                    // The sender's retry: a 503 is answered again later, as clients do (Retry-After is 5 s;
                    // the test retries sooner).
                    while true {
                        let reply = try await carol.send(Array("message \(n)".utf8), via: a)
                        if reply.status == 204 { break }
                        guard reply.status == 503, reply.errorCode == "database_unavailable" else {
                            throw FixtureError("a send answered \(reply.status): \(reply.text)")
                        }
                        _ = refusals.next()
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
            }
            try await eventually("some messages to be stored", timeout: .seconds(30)) { try await b.mailbox(token: token).count >= 20 }
            try await cluster.restart {
                try await eventually("a node to answer 503 while PostgreSQL is down", timeout: .seconds(30)) { refusals.value > 0 }
                let health = try await a.request(.GET, "/v1/mailbox", token: token)
                #expect(health.status == 503 && health.errorCode == "database_unavailable")
            }
            try await sender.value
            var received: [String] = []
            var after = "0"
            while true {
                let reply = try await b.request(.GET, "/v1/mailbox?limit=500&after=\(after)", token: token)
                let page = try reply.decode(FetchResponse.self)
                received += page.messages.map { String(decoding: $0.envelope.bytes, as: UTF8.self) }
                guard page.more, let last = page.messages.last else { break }
                after = last.id
            }
            #expect(received == (0..<200).map { "message \($0)" })
        }
    }

    @Test("nodes migrating a new database at the same moment migrate it once; a node refuses a schema newer than it knows (exit 3, with the reason)")
    func schemaVersions() async throws {
        let cluster = try await PostgresCluster.ready()
        let name = try await cluster.newDatabase()
        let url = cluster.url(database: name)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let storage = PostgresRelayStorage(location: try PostgresLocation(url: url), connections: 2)
                    defer { storage.close() }
                    try await storage.migrate()
                }
            }
            try await group.waitForAll()
        }
        #expect(try cluster.psql("SELECT version FROM parley_schema", database: name).trimmingCharacters(in: .whitespacesAndNewlines)
                == String(PostgresRelayStorage.schemaVersion))

        try cluster.psql("UPDATE parley_schema SET version = 99", database: name)
        let directory = try TemporaryDirectory("schema")
        let result = try await run(try Binaries.path("parley-relay"), ["serve", "--listen", "127.0.0.1:0", "--name", Self.relayName,
                                                                 "--data", directory.sub("data"), "--database", url], in: directory)
        #expect(result.status == 3, "\(result.summary)")
        #expect(result.stderr.contains("the database's schema is version 99, newer than this parley-relay knows (\(PostgresRelayStorage.schemaVersion))"), "\(result.summary)")
    }

    /// Runs `body` with `count` nodes on a fresh database of the private cluster, sharing one data directory
    /// (attachments), and kills them afterwards.
    func withNodes(_ count: Int, cluster: PostgresCluster? = nil, _ body: ([RelayNode], TemporaryDirectory) async throws -> Void) async throws {
        let cluster = if let cluster { cluster } else { try await PostgresCluster.ready() }
        let url = cluster.url(database: try await cluster.newDatabase())
        let directory = try TemporaryDirectory("nodes")
        // Every node that started is killed at the end, also when another failed to start.
        let started = PostgresClusterState<[RelayNode]>([])
        defer { for node in started.withLock({ $0 }) { node.kill() } }
        // Started together: they migrate the new database at the same moment (one does, under the lock).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    let node = try await RelayNode.start(index: index, database: url, directory: directory)
                    started.withLock { $0.append(node) }
                }
            }
            try await group.waitForAll()
        }
        try await body(started.withLock { $0 }.sorted { $0.index < $1.index }, directory)
    }

    func both<T: Sendable>(_ nodes: [RawHTTP], _ call: @escaping @Sendable (RawHTTP) async throws -> T) async throws -> [T] {
        try await withThrowingTaskGroup(of: T.self) { group in
            for node in nodes { group.addTask { try await call(node) } }
            return try await group.reduce(into: [T]()) { $0.append($1) }
        }
    }
}

/// One `parley-relay serve --database` process named `SharedDatabaseTests.relayName`.
final class RelayNode: @unchecked Sendable {
    let index: Int
    let port: Int
    let process: Process
    let logPath: String
    var baseURL: String { "http://127.0.0.1:\(port)" }

    private init(index: Int, port: Int, process: Process, logPath: String, database: String) {
        self.database = database
        self.index = index
        self.port = port
        self.process = process
        self.logPath = logPath
    }

    let database: String

    /// The node started again on its port, after `kill`.
    func restarted(directory: TemporaryDirectory) async throws -> RelayNode {
        var lastError: (any Error)?
        for _ in 0..<20 {   // the port may linger for a moment after a SIGKILL
            do { return try await Self.start(index: index, database: database, directory: directory, port: port) } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        throw lastError!
    }

    /// A port taken between choosing and binding (by a test running beside this one) is tried again
    /// with another, as `RelayProcess` does.
    static func start(index: Int, database: String, directory: TemporaryDirectory, port: Int? = nil) async throws -> RelayNode {
        if let port { return try await launch(index: index, database: database, directory: directory, port: port) }
        var lastError: (any Error)?
        for _ in 0..<5 {
            do { return try await launch(index: index, database: database, directory: directory, port: try RelayProcess.freePort()) } catch {
                guard "\(error)".contains("Address already in use") else { throw error }
                lastError = error
            }
        }
        throw lastError!
    }

    private static func launch(index: Int, database: String, directory: TemporaryDirectory, port: Int) async throws -> RelayNode {
        let out = directory.sub("node-\(index)-\(port).out"), err = directory.sub("node-\(index)-\(port).err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("parley-relay"))
        process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--name", SharedDatabaseTests.relayName, "--data", directory.sub("shared-data"),
                             "--database", database, "--no-rate-limit", "--log-level", "notice"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        try process.run()
        let node = RelayNode(index: index, port: port, process: process, logPath: err, database: database)
        do {
            try await eventually("node \(index)'s banner", timeout: .seconds(60)) {
                if (try? String(contentsOfFile: out, encoding: .utf8))?.contains("serving \(SharedDatabaseTests.relayName) on") == true { return true }
                guard process.isRunning else {
                    throw FixtureError("node \(index) exited with \(process.terminationStatus): \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
                }
                return false
            }
        } catch {
            node.kill()
            throw error
        }
        return node
    }

    func kill(_ signal: Int32 = SIGKILL) {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
        process.waitForExitReaping()
    }
}

/// An account made with raw requests (a device list signed here, no client engine): the tests choose
/// which node each request goes to.
struct RawAccount: Sendable {
    let address: String
    let accountKey: Ed25519.KeyPair
    let device: Ed25519.KeyPair
    let list: SignedDeviceList

    static func register(_ name: String, via node: RawHTTP) async throws -> RawAccount {
        let accountKey = Ed25519.KeyPair(), device = Ed25519.KeyPair()
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: 1)], version: 1,
                                         accountKey: accountKey)
        let address = "\(name)@\(SharedDatabaseTests.relayName)"
        let reply = try await node.request(.POST, "/v1/accounts", json: RegisterRequest(address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                                                          deviceList: Base64Bytes(list.encoded)))
        guard reply.status == 201 else { throw FixtureError("registration answered \(reply.status): \(reply.text)") }
        return RawAccount(address: address, accountKey: accountKey, device: device, list: list)
    }

    func token(via node: RawHTTP) async throws -> String {
        let challenge = try await node.request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: address, deviceId: 1))
            .decode(ChallengeResponse.self).challenge.bytes
        let signature = device.sign(authenticationMessage(challenge: challenge, relayName: SharedDatabaseTests.relayName))
        let reply = try await node.request(.POST, "/v1/auth/session", json: SessionRequest(address: address, deviceId: 1, challenge: Base64Bytes(challenge),
                                                                                            signature: Base64Bytes(signature)))
        guard reply.status == 200 else { throw FixtureError("session answered \(reply.status): \(reply.text)") }
        return try reply.decode(SessionResponse.self).token
    }

    /// Sends `envelope` to this account's device 1 (as a stranger to an account without a delivery
    /// access verifier: no token needed).
    func send(_ envelope: [UInt8], via node: RawHTTP) async throws -> RawHTTP.Reply {
        try await node.request(.POST, node.messagesPath(address), json: SendRequest(messages: [
            OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(device.publicKey.bytes), envelope: Base64Bytes(envelope)),
        ]))
    }

    func receive(_ envelope: [UInt8], via node: RawHTTP) async throws {
        let reply = try await send(envelope, via: node)
        guard reply.status == 204 else { throw FixtureError("send answered \(reply.status): \(reply.text)") }
    }

    /// Publishes version 2 of the list, device 1 with a new key.
    func replaceDeviceKey(via node: RawHTTP) async throws {
        let next = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: Ed25519.KeyPair().publicKey, createdAt: 2)], version: 2,
                                         accountKey: accountKey)
        let reply = try await node.request(.PUT, node.accountPath(address) + "/devices", json: DeviceListUpdate(deviceList: Base64Bytes(next.encoded)))
        guard reply.status == 204 else { throw FixtureError("device list update answered \(reply.status): \(reply.text)") }
    }
}

/// What a push connection received.
final class PushRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var texts: [String] = []
    private var ended = false
    func record(_ text: String) { lock.withLock { texts.append(text) } }
    func closed() { lock.withLock { ended = true } }
    var wakes: Int { lock.withLock { texts.filter { $0 == "wake" }.count } }
    var isClosed: Bool { lock.withLock { ended } }
}

/// Three nodes behind HAProxy (Debian's haproxy, a configuration written by the test) on one database.
@Suite("Three relay nodes behind HAProxy")
struct ThreeNodesBehindHAProxyTests {
    static let recipients = 4
    static let perRecipient = 2_500

    @Test("10,000 messages through HAProxy while one node is SIGKILLed and restarted: each arrives, none is lost, the mailboxes end empty")
    func killANodeUnderLoad() async throws {
        try await SharedDatabaseTests().withNodes(3) { nodes, directory in
            var nodes = nodes
            let balancer = try await HAProxy.start(in: directory, nodes: nodes.map(\.port))
            defer { balancer.stop() }
            let http = RawHTTP(baseURL: "http://127.0.0.1:\(balancer.port)")
            var accounts: [(RawAccount, String)] = []
            for index in 0..<Self.recipients {
                let account = try await RawAccount.register("r\(index)", via: http)
                accounts.append((account, try await account.token(via: http)))
            }
            let sent = Counter(), retries = Counter()
            let senders = accounts.enumerated().map { index, pair in
                Task {
                    for n in 0..<Self.perRecipient {
                        while true {
                            if let reply = try? await pair.0.send(Array("m-\(index)-\(n)".utf8), via: http), reply.status == 204 { break }
                            _ = retries.next()
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        _ = sent.next()
                    }
                }
            }
            let receivers = accounts.map { pair in
                Task { () throws -> (distinct: Set<String>, repeats: Int) in
                    var seen = Set<String>(), repeats = 0
                    let deadline = ContinuousClock.now + .seconds(300)
                    while seen.count < Self.perRecipient, ContinuousClock.now < deadline {
                        guard let reply = try? await http.request(.GET, "/v1/mailbox?limit=500", token: pair.1), reply.status == 200,
                              let page = try? reply.decode(FetchResponse.self) else {
                            try await Task.sleep(for: .milliseconds(20))
                            continue
                        }
                        for message in page.messages where !seen.insert(String(decoding: message.envelope.bytes, as: UTF8.self)).inserted { repeats += 1 }
                        if page.messages.isEmpty { try await Task.sleep(for: .milliseconds(50)); continue }
                        _ = try? await http.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: page.messages.map(\.id)), token: pair.1)
                    }
                    return (seen, repeats)
                }
            }
            try await eventually("3,000 messages sent", timeout: .seconds(240)) { sent.value >= 3_000 }
            nodes[1].kill()
            try await eventually("6,000 messages sent with node 1 down", timeout: .seconds(240)) { sent.value >= 6_000 }
            nodes[1] = try await nodes[1].restarted(directory: directory)
            defer { nodes[1].kill() }   // withNodes kills the nodes it started, not this one
            for sender in senders { try await sender.value }
            var repeats = 0
            for (index, receiver) in receivers.enumerated() {
                let result = try await receiver.value
                repeats += result.repeats
                #expect(result.distinct == Set((0..<Self.perRecipient).map { "m-\(index)-\($0)" }), "recipient \(index)")
            }
            // What the relays still hold after the receivers acknowledged everything they saw.
            for (_, token) in accounts {
                #expect(try await http.mailbox(token: token).isEmpty)
            }
            print("three nodes behind HAProxy: \(sent.value) messages sent, \(retries.value) sends retried, \(repeats) delivered again (dropped by the receiver as repeats)")
        }
    }
}

/// HAProxy in the foreground on a free loopback port, round robin over the nodes, health-checked on
/// /v1/health; a connection that fails goes to another node (`option redispatch`), a request already sent
/// is never sent again by HAProxy.
final class HAProxy: @unchecked Sendable {
    let port: Int
    let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    static func start(in directory: TemporaryDirectory, nodes: [Int]) async throws -> HAProxy {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/haproxy") else {
            throw FixtureError("haproxy is not installed (/usr/sbin/haproxy): `make deps` installs Debian's haproxy package")
        }
        let port = try RelayProcess.freePort()
        let servers = nodes.enumerated().map { "  server n\($0.offset) 127.0.0.1:\($0.element) check" }.joined(separator: "\n")
        let configuration = """
            global
              maxconn 4096
            defaults
              mode http
              timeout connect 2s
              timeout client 60s
              timeout server 60s
              timeout tunnel 1h
              retries 3
              option redispatch
            frontend relay
              bind 127.0.0.1:\(port)
              default_backend nodes
            backend nodes
              balance roundrobin
              option httpchk GET /v1/health
              http-check expect status 200
              default-server inter 300ms fall 2 rise 2
            \(servers)

            """
        let path = directory.sub("haproxy.cfg")
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/haproxy")
        process.arguments = ["-db", "-q", "-f", path]
        process.standardInput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: directory.sub("haproxy.log"), contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: directory.sub("haproxy.log"))
        process.standardError = FileHandle(forWritingAtPath: directory.sub("haproxy.log"))
        try process.run()
        let balancer = HAProxy(port: port, process: process)
        let http = RawHTTP(baseURL: "http://127.0.0.1:\(port)")
        try await eventually("HAProxy to pass requests to the nodes", timeout: .seconds(30)) {
            guard process.isRunning else { throw FixtureError("haproxy exited: \((try? String(contentsOfFile: directory.sub("haproxy.log"), encoding: .utf8)) ?? "")") }
            return (try? await http.request(.GET, "/v1/health"))?.status == 200
        }
        return balancer
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitForExitReaping()
    }
}
