import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// One device of an account: an engine over a real store file in `home`, on any relay transport.
public final class ClientDevice: @unchecked Sendable {
    public let engine: Engine
    /// The engine's store, opened by whoever made the engine (the engine keeps its own to itself).
    public let store: EncryptedStore
    public let home: String
    private let lock = Lock()
    private var connection: Task<Void, Never>?

    public init(engine: Engine, store: EncryptedStore, home: String) {
        self.engine = engine
        self.store = store
        self.home = home
    }
    public var address: AccountAddress { get async { engine.ownAddress } }
    public var deviceAddress: DeviceAddress { get async { await engine.account.deviceAddress } }

    /// Creates the account `name@<relay's name>` with device 1 (registration and prekey upload included),
    /// with `oneTimePreKeys` one-time prekeys of each kind.
    public static func create(_ name: String, on relay: any RelayTransport, relayName: String, in directory: TemporaryDirectory,
                              clock: any WallClock = SystemWallClock(),
                              oneTimePreKeys: Int = LocalPreKeys.defaultOneTimeCount) async throws -> ClientDevice {
        let home = directory.sub("home-\(name)@\(relayName)")
        let store = try newStore(home: home)
        let engine = try await Engine.createAccount(try AccountAddress("\(name)@\(relayName)"), store: store, relay: relay, clock: clock,
                                                    oneTimePreKeys: oneTimePreKeys)
        return ClientDevice(engine: engine, store: store, home: home)
    }

    public static func newStore(home: String) throws -> EncryptedStore {
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try KeyFile.create(at: home + "/key")
        return try EncryptedStore.create(at: home + "/parley.db", unlock: [.keyFile(path: home + "/key")])
    }

    /// Adds device `deviceId` to this device's account, as linking does without the history transfer:
    /// publishes a newer device list signed by the account key, creates the new device's store and
    /// uploads its prekeys.
    public func addDevice(_ deviceId: UInt32, in directory: TemporaryDirectory) async throws -> ClientDevice {
        let primary = await engine.account
        let now = SystemWallClock().nowMilliseconds()
        let identity = DeviceIdentity(deviceId: deviceId, keyPair: Ed25519.KeyPair())
        let list = SignedDeviceList.sign(
            devices: primary.deviceList.devices + [DeviceEntry(deviceId: deviceId, identityKey: identity.publicKey, createdAt: now)],
            version: primary.deviceList.version + 1, accountKey: primary.accountKey)
        try await engine.relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list.encoded)), address: primary.address)
        let home = directory.sub("home-\(primary.address)-\(deviceId)")
        let store = try Self.newStore(home: home)
        let account = LocalAccount(address: primary.address, accountKey: primary.accountKey, device: identity, deviceList: list,
                                   certificateExpiry: now + LocalAccount.certificateLifetime)
        let preKeys = LocalPreKeys.generate(oneTime: 10)
        try store.saveLocalAccount(account, preKeys: preKeys)
        let device = ClientDevice(engine: try Engine(store: store, relay: engine.relay), store: store, home: home)
        try await engine.relay.uploadPreKeys(preKeyUpload(preKeys, identity: identity), token: try await device.engine.sessionToken())
        return device
    }

    /// Starts `runConnection` (push channel: wake → fetch) and returns once the channel is up.
    public func connect() async throws {
        let events = await engine.subscribe()
        let task = Task { [engine] in await engine.runConnection() }
        lock.withLock { connection = task }
        let connected = await arrives(on: events) { $0 == .connection(.connected) }
        guard connected else { throw FixtureError("the push channel of \(await address) did not connect") }
    }

    public func stopConnection() {
        lock.withLock {
            connection?.cancel()
            connection = nil
        }
    }

    /// The conversation with `peer`, oldest first.
    public func history(with peer: AccountAddress) throws -> [MessageRecord] {
        try store.messages(in: .direct(peer), limit: 10_000)
    }

    /// Messages this account wrote to `peer`.
    public func sent(to peer: AccountAddress) throws -> [MessageRecord] { try history(with: peer).filter { $0.direction == .outgoing } }

    public func incomingTexts(from peer: AccountAddress) throws -> [String] {
        try history(with: peer).filter { $0.direction == .incoming && $0.state != .failed }.map(\.text)
    }

    /// A bearer token of this device (the engine caches one).
    public func token() async throws -> String { try await engine.sessionToken() }

    deinit { connection?.cancel() }
}

/// The full prekey upload for `keys` (what `Engine.createAccount` sends).
public func preKeyUpload(_ keys: LocalPreKeys, identity: DeviceIdentity) -> PreKeyUpload {
    func signed(_ id: UInt32, _ encoded: [UInt8], _ raw: [UInt8]) -> SignedPreKeyEntry {
        SignedPreKeyEntry(id: id, key: Base64Bytes(raw), signature: Base64Bytes(identity.keyPair.sign(encoded)))
    }
    let spk = keys.signedPreKeys[keys.currentSignedPreKeyId]!.publicKey
    let lastResort = keys.lastResortPQPreKeys[keys.currentLastResortPQPreKeyId]!.publicKey
    return PreKeyUpload(
        signedPreKey: signed(keys.currentSignedPreKeyId, KeyEncoding.encode(spk), spk.bytes),
        lastResortPQPreKey: signed(keys.currentLastResortPQPreKeyId, KeyEncoding.encode(lastResort), lastResort.bytes),
        oneTimePreKeys: keys.oneTimePreKeys.sorted { $0.key < $1.key }.map { OneTimePreKeyEntry(id: $0.key, key: Base64Bytes($0.value.publicKey.bytes)) },
        oneTimePQPreKeys: keys.oneTimePQPreKeys.sorted { $0.key < $1.key }.map {
            signed($0.key, KeyEncoding.encode($0.value.publicKey), $0.value.publicKey.bytes)
        })
}

/// A fixture that could not do its part (a process that did not start, a wait that gave up).
public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Whether an event for which `matches` holds arrives on `events` within `timeout` (which only bounds a
/// hung test).
public func arrives<Event: Sendable>(on events: AsyncStream<Event>, within timeout: Duration = .seconds(60),
                                     where matches: @escaping @Sendable (Event) -> Bool) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask {
            for await event in events where matches(event) { return true }
            return false
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return false
        }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
}

/// Polls `condition` until it holds; throws (naming `what`) if it still does not after `timeout`.
/// The timeout only bounds a hung test — it is never what a test asserts.
public func eventually(_ what: @autoclosure () -> String, timeout: Duration = .seconds(60),
                       _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw FixtureError("gave up waiting for: \(what())") }
        try await Task.sleep(for: .milliseconds(25))
    }
}
