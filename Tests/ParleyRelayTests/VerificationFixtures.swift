import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

// Fixtures of VerificationTests: a relay that an attacker (or a reinstall) controls. Bob's relay is named
// `127.0.0.1:<proxy port>`; an in-process HTTP proxy on that port forwards every request to a real
// `parley-relay` process started with that `--name`, and can
//   * rewrite responses (serve a forged device list), and
//   * switch to another relay process of the same name (Bob's name registered again with a new account key).
// From a contact's point of view both are "the relay now serves something else for bob@…".

/// One `parley-relay serve` process with an explicit public name (its listening port differs from the
/// port in its name).
final class NamedRelayProcess: @unchecked Sendable {
    let name: String
    let listenPort: Int
    private let process: Process
    private let stderrPath: String

    private init(name: String, listenPort: Int, process: Process, stderrPath: String) {
        self.name = name
        self.listenPort = listenPort
        self.process = process
        self.stderrPath = stderrPath
    }

    var baseURL: String { "http://127.0.0.1:\(listenPort)" }

    /// Starts `parley-relay serve --name NAME` with its data in `directory/<label>`; waits (bounded) for its
    /// banner. A port taken between choosing and binding is retried with another one.
    static func start(name: String, in directory: TemporaryDirectory, label: String) async throws -> NamedRelayProcess {
        let binary = try Binaries.path("parley-relay")
        var lastLog = ""
        for attempt in 0..<5 {
            let port = try RelayProcess.freePort()
            let out = directory.sub("\(label)-\(attempt).out"), err = directory.sub("\(label)-\(attempt).err")
            FileManager.default.createFile(atPath: out, contents: nil)
            FileManager.default.createFile(atPath: err, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--listen", "127.0.0.1:\(port)", "--name", name, "--data", directory.sub(label),
                                 "--log-level", "warning"]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = FileHandle(forWritingAtPath: out)
            process.standardError = FileHandle(forWritingAtPath: err)
            try process.run()
            let relay = NamedRelayProcess(name: name, listenPort: port, process: process, stderrPath: err)
            let banner = "parley-relay: serving \(name) on http://127.0.0.1:\(port)"
            var exited = false
            try await eventually("the banner of relay \(label)", timeout: .seconds(60)) {
                if let text = try? String(contentsOfFile: out, encoding: .utf8), text.contains(banner) { return true }
                if !process.isRunning { exited = true; return true }
                return false
            }
            if !exited { return relay }
            lastLog = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            guard process.terminationStatus == 3 else { break }  // 3: could not bind, try another port
        }
        throw FixtureError("relay \(label) (\(name)) did not start:\n\(lastLog)")
    }

    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitForExitReaping()
    }

    deinit { kill() }
}

/// An HTTP proxy in this process on 127.0.0.1: forwards each request to the current upstream relay and
/// passes the reply through `tamper`, if one is set.
final class TamperingProxy: @unchecked Sendable {
    /// What the proxy answers instead of the upstream reply (nil: pass it through unchanged).
    typealias Tamper = @Sendable (_ request: ProxiedRequest, _ reply: RawHTTP.Reply) -> RawHTTP.Reply?

    struct ProxiedRequest: Sendable {
        let method: String
        /// The path without the query, percent-decoded.
        let path: String
    }

    private let lock = Lock()
    private var upstream = ""
    private var tamperHook: Tamper?
    private var boundPort = 0
    private var task: Task<Void, any Error>?

    var port: Int { lock.withLock { boundPort } }
    func setUpstream(_ baseURL: String) { lock.withLock { upstream = baseURL } }
    func setTamper(_ tamper: Tamper?) { lock.withLock { tamperHook = tamper } }

    static func start() async throws -> TamperingProxy {
        let proxy = TamperingProxy()
        let responder = CallbackResponder<BasicRequestContext> { request, _ in try await proxy.forward(request) }
        var logger = Logger(label: "tampering-proxy")
        logger.logLevel = .critical
        let app = Application(responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in proxy.lock.withLock { proxy.boundPort = channel.localAddress?.port ?? 0 } },
                              logger: logger)
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        proxy.lock.withLock { proxy.task = task }
        try await eventually("the tampering proxy to listen", timeout: .seconds(30)) { proxy.port != 0 }
        return proxy
    }

    private func forward(_ request: Request) async throws -> Response {
        let (base, tamper) = lock.withLock { (upstream, tamperHook) }
        let rawPath = request.head.path ?? "/"
        var outgoing = HTTPClientRequest(url: base + rawPath)
        outgoing.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where [HTTPField.Name.contentType, .authorization].contains(field.name) {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        let body = try await request.body.collect(upTo: 64 << 20)
        if body.readableBytes > 0 { outgoing.body = .bytes(body) }
        let response = try await HTTPClient.shared.execute(outgoing, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        var reply = RawHTTP.Reply(status: Int(response.status.code), body: [UInt8](bytes.readableBytesView))
        let path = String(rawPath.split(separator: "?", maxSplits: 1).first ?? "").removingPercentEncoding ?? rawPath
        if let tamper, let replaced = tamper(ProxiedRequest(method: request.method.rawValue, path: path), reply) { reply = replaced }
        var headers = HTTPFields()
        if let type = response.headers.first(name: "Content-Type") { headers[.contentType] = type }
        return Response(status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }

    func stop() { lock.withLock { task }?.cancel() }

    deinit { task?.cancel() }
}

/// Bob's relay as his contacts see it: the name `127.0.0.1:<proxy port>`, served through a proxy by one
/// real relay process at a time.
final class ProxiedRelay: @unchecked Sendable {
    let proxy: TamperingProxy
    let directory: TemporaryDirectory
    private let lock = Lock()
    private var processes: [NamedRelayProcess] = []

    var name: String { "127.0.0.1:\(proxy.port)" }
    var current: NamedRelayProcess { lock.withLock { processes.last! } }

    private init(proxy: TamperingProxy, directory: TemporaryDirectory) {
        self.proxy = proxy
        self.directory = directory
    }

    static func start(in directory: TemporaryDirectory) async throws -> ProxiedRelay {
        let relay = ProxiedRelay(proxy: try await TamperingProxy.start(), directory: directory)
        try await relay.replaceUpstream()
        return relay
    }

    /// Starts a fresh relay process (empty database) under the same name and sends all traffic to it: the
    /// old relay's accounts are gone, and their names can be registered again.
    func replaceUpstream() async throws {
        let index = lock.withLock { processes.count + 1 }
        let process = try await NamedRelayProcess.start(name: name, in: directory, label: "proxied-relay-\(index)")
        lock.withLock { processes.append(process) }
        proxy.setUpstream(process.baseURL)
    }

    func stop() {
        proxy.stop()
        for process in lock.withLock({ processes }) { process.kill() }
    }

    deinit { stop() }
}

extension TestDevice {
    /// Creates the account `name@relayName` (through whatever serves that name) with its home in
    /// `directory/home-<homeLabel>`.
    static func create(_ name: String, relayName: String, homeLabel: String, in directory: TemporaryDirectory,
                       trustPolicy: TrustPolicy = .onFirstUse) async throws -> TestDevice {
        let home = directory.sub("home-\(homeLabel)")
        let store = try newStore(home: home)
        let client = try RelayClient(endpoint: try RelayEndpoint(relay: relayName, tls: false))
        let created = try await Engine.createAccount(try AccountAddress("\(name)@\(relayName)"), store: store, relay: client)
        let engine = trustPolicy == .onFirstUse ? created : try Engine(store: store, relay: client, trustPolicy: trustPolicy)
        return TestDevice(engine: engine, home: home)
    }

    /// The same store under another trust policy (a new Engine; use one of the two at a time).
    func with(policy: TrustPolicy) throws -> TestDevice {
        TestDevice(engine: try Engine(store: store, relay: engine.relay, trustPolicy: policy), home: home)
    }

    /// System notices in the conversation with `peer`, oldest first.
    func notices(with peer: AccountAddress) throws -> [String] {
        try history(with: peer).filter { $0.direction == .system }.map(\.text)
    }
}

extension TestDevice {
    /// Links device `deviceId` to this device's account without going through a `RelayProcess` value:
    /// publishes a newer list signed by the account key, creates the device's store and uploads its prekeys.
    func linkDevice(_ deviceId: UInt32, in directory: TemporaryDirectory) async throws -> TestDevice {
        let primary = await engine.account
        let published = try await engine.relay.account(primary.address)
        let current = try SignedDeviceList(verifying: published.deviceList.bytes)
        let now = SystemWallClock().nowMilliseconds()
        let identity = DeviceIdentity(deviceId: deviceId, keyPair: Ed25519.KeyPair())
        let list = SignedDeviceList.sign(devices: current.devices + [DeviceEntry(deviceId: deviceId, identityKey: identity.publicKey, createdAt: now)],
                                         version: current.version + 1, accountKey: primary.accountKey)
        try await engine.relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list.encoded)), address: primary.address)
        let home = self.home + "-device\(deviceId)"
        let store = try Self.newStore(home: home)
        let preKeys = LocalPreKeys.generate(oneTime: 10)
        try store.saveLocalAccount(LocalAccount(address: primary.address, accountKey: primary.accountKey, device: identity, deviceList: list,
                                                certificateExpiry: now + LocalAccount.certificateLifetime), preKeys: preKeys)
        let device = TestDevice(engine: try Engine(store: store, relay: engine.relay), home: home)
        try await engine.relay.uploadPreKeys(preKeyUpload(preKeys, identity: identity), token: try await device.token())
        return device
    }

    /// Publishes a device list of this account (signed by its account key) naming `devices`, with a version
    /// one above the relay's current list. Device entries without a key get a fresh one (no prekeys).
    @discardableResult
    func publishDevices(_ devices: [DeviceEntry]) async throws -> SignedDeviceList {
        let account = await engine.account
        let current = try SignedDeviceList(verifying: try await engine.relay.account(account.address).deviceList.bytes)
        let list = SignedDeviceList.sign(devices: devices, version: current.version + 1, accountKey: account.accountKey)
        try await engine.relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list.encoded)), address: account.address)
        return list
    }
}

/// Everything an engine emits from now on, for later inspection.
final class EngineEventLog: @unchecked Sendable {
    private let lock = Lock()
    private var recorded: [EngineEvent] = []
    private var task: Task<Void, Never>?

    var events: [EngineEvent] { lock.withLock { recorded } }

    static func recording(_ engine: Engine) async -> EngineEventLog {
        let log = EngineEventLog()
        let stream = await engine.subscribe()
        let task = Task { for await event in stream { log.lock.withLock { log.recorded.append(event) } } }
        log.lock.withLock { log.task = task }
        return log
    }

    /// Waits (bounded) until an event satisfying `match` has been recorded.
    func waitFor(_ what: String, _ match: @escaping (EngineEvent) -> Bool) async throws {
        try await eventually("the event: \(what)", timeout: .seconds(10)) { self.events.contains(where: match) }
    }

    deinit { task?.cancel() }
}
