import ParleyCrypto
@testable import ParleyProtocol
import ParleyTestSupport

/// One device of one account, with its store and session manager, all deterministic under `label`.
struct TestDevice {
    let account: LocalAccount
    let store: InMemorySessionStore
    let manager: SessionManager
    let preKeys: LocalPreKeys
    var address: DeviceAddress { account.deviceAddress }
    /// The account's address, typed (every test account has a valid one).
    var accountAddress: AccountAddress { AccountAddress(stringLiteral: account.address) }
}

/// Builds accounts with `deviceCount` devices each, all sharing one `PreKeyDirectory`.
struct TestWorld {
    let bundles = PreKeyDirectory()
    let clock = FixedClock()

    /// `seed` defaults to the address; pass another one to give the same address an unrelated account key.
    func account(_ address: AccountAddress, devices deviceCount: Int = 1, seed: String? = nil) -> [TestDevice] {
        account(address.description, devices: deviceCount, seed: seed)
    }

    func account(_ name: String, devices deviceCount: Int = 1, seed: String? = nil) -> [TestDevice] {
        let random = DeterministicRandom(label: seed ?? name)
        let accountKey = Ed25519.KeyPair(random: random)
        let identities = (1...deviceCount).map { DeviceIdentity(deviceId: UInt32($0), keyPair: Ed25519.KeyPair(random: random)) }
        let list = SignedDeviceList.sign(devices: identities.map(Self.entry), version: 1, accountKey: accountKey)
        return identities.map { identity in
            makeDevice(address: name, accountKey: accountKey, identity: identity, list: list, random: random)
        }
    }

    /// Adds device `id` to the account of `existing`: returns it and a version-`version` list, signed by the
    /// account key, that names the devices in `keep` and the new one. The new device's bundle is served.
    func addDevice(_ id: UInt32, to existing: [TestDevice], keeping keep: [TestDevice],
                   version: UInt64) -> (device: TestDevice, list: SignedDeviceList) {
        let base = existing[0].account
        let random = DeterministicRandom(label: "\(base.address)#\(id)")
        let identity = DeviceIdentity(deviceId: id, keyPair: Ed25519.KeyPair(random: random))
        let list = SignedDeviceList.sign(devices: (keep.map(\.account.device) + [identity]).map(Self.entry),
                                         version: version, accountKey: base.accountKey)
        let device = makeDevice(address: base.address, accountKey: base.accountKey, identity: identity, list: list, random: random)
        return (device, list)
    }

    private static func entry(_ identity: DeviceIdentity) -> DeviceEntry {
        DeviceEntry(deviceId: identity.deviceId, identityKey: identity.publicKey, createdAt: 1_700_000_000_000)
    }

    private func makeDevice(address: String, accountKey: Ed25519.KeyPair, identity: DeviceIdentity, list: SignedDeviceList,
                            random: DeterministicRandom) -> TestDevice {
        let account = LocalAccount(address: address, accountKey: accountKey, device: identity, deviceList: list,
                                   certificateExpiry: clock.now + 86_400_000)
        let preKeys = LocalPreKeys.generate(oneTime: 3, random: random)
        let store = InMemorySessionStore(preKeys: preKeys)
        let manager = SessionManager(account: account, store: store, bundles: bundles, clock: clock, random: random)
        let device = TestDevice(account: account, store: store, manager: manager, preKeys: preKeys)
        bundles.register(device.address, identity: identity, preKeys: { store.preKeys() })
        return device
    }

    /// Makes each side know the other's account key and device list, as adding a contact does.
    func introduce(_ a: [TestDevice], _ b: [TestDevice]) {
        for x in a { x.store.setAccount(KnownAccount(accountKey: b[0].account.accountKey.publicKey, deviceList: b[0].account.deviceList),
                                        for: b[0].accountAddress) }
        for y in b { y.store.setAccount(KnownAccount(accountKey: a[0].account.accountKey.publicKey, deviceList: a[0].account.deviceList),
                                        for: a[0].accountAddress) }
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}

/// Tests write an account address as its text.
extension AccountAddress: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) { try! self.init(text) }
}

// MARK: Helpers for the specification tests

extension TestDevice {
    /// Another manager on this device's store and account, with its own clock and trust policy.
    func manager(clock: FixedClock, policy: NewIdentityPolicy = .trustOnFirstUse) -> SessionManager {
        SessionManager(account: account, store: store, bundles: PreKeyDirectory(), clock: clock,
                       random: DeterministicRandom(label: "\(address) second manager"), newIdentityPolicy: policy)
    }

    /// Deletes this device's sessions with `peer`, as a reinstall of the app would.
    func forgetSessions(with peer: DeviceAddress) {
        var changes = SessionChanges()
        changes.removedSessions = [peer]
        store.commit(changes)
    }

    /// Opens an envelope addressed to this device without touching any session.
    func peek(_ envelope: OutgoingEnvelope) throws -> SealedContent {
        try SealedSender.open(envelope.envelope, identity: account.device)
    }

    /// The envelope addressed to this device among `envelopes`.
    func envelope(in envelopes: [OutgoingEnvelope]) throws -> OutgoingEnvelope {
        guard let match = envelopes.first(where: { $0.recipient == address }) else {
            throw ProtocolError.noSession(address: address.address, deviceId: address.deviceId)
        }
        return match
    }
}

extension SealedContent.Message {
    var isPreKey: Bool { if case .preKey = self { true } else { false } }
}

/// Everything `exportSecretsForTesting` shows, in a comparable value: equal snapshots before and after an
/// operation mean the operation changed no ratchet state.
struct RatchetSnapshot: Equatable {
    let rootKey: [UInt8]
    let sendingChainKey: [UInt8]?
    let receivingChainKey: [UInt8]?
    let sendingRatchetPublicKey: [UInt8]
    let remoteRatchetPublicKey: [UInt8]?
    let counts: [UInt32]
    let skippedKeyCount: Int
    let pendingPreKey: PreKeyHeader?

    init(_ session: RatchetSession) {
        let s = session.exportSecretsForTesting()
        rootKey = s.rootKey
        sendingChainKey = s.sendingChainKey
        receivingChainKey = s.receivingChainKey
        sendingRatchetPublicKey = s.sendingRatchetPublicKey
        remoteRatchetPublicKey = s.remoteRatchetPublicKey
        counts = [s.sendCount, s.receiveCount, s.previousSendCount]
        skippedKeyCount = s.skippedKeyCount
        pendingPreKey = session.pendingPreKey
    }
}

/// Two device identities and Bob's prekeys, for tests below the session manager.
struct Parties {
    let alice: DeviceIdentity
    let bob: DeviceIdentity
    let bobKeys: LocalPreKeys
    let random: DeterministicRandom

    init(_ label: String = "parties") {
        random = DeterministicRandom(label: label)
        alice = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
        bob = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
        bobKeys = LocalPreKeys.generate(oneTime: 2, random: random)
    }

    /// Bob's bundle, with or without a one-time prekey, and with a one-time or the last-resort PQ prekey.
    func bundle(oneTime: Bool = true, pqOneTime: Bool = true) -> PreKeyBundle {
        bobKeys.bundle(identity: bob, oneTimePreKeyId: oneTime ? bobKeys.oneTimePreKeys.keys.min() : nil,
                       oneTimePQPreKeyId: pqOneTime ? bobKeys.oneTimePQPreKeys.keys.min() : nil)
    }

    /// A started session: Alice has sent `first` (not yet read by Bob), Bob cannot send yet.
    func start(oneTime: Bool = true) throws -> (alice: RatchetSession, bob: RatchetSession, first: RatchetMessage) {
        let served = bundle(oneTime: oneTime, pqOneTime: oneTime)
        let initiation = try PQXDH.initiate(identity: alice, bundle: served, random: random)
        var aliceSession = try RatchetSession.initiator(initiation, localIdentity: alice.publicKey, bundle: served, random: random)
        let first = try aliceSession.encrypt(Array("first"))
        let response = try PQXDH.respond(identity: bob, preKeys: bobKeys, header: initiation.header)
        let bobSession = RatchetSession.responder(response, localIdentity: bob.publicKey, remoteIdentity: alice.publicKey)
        return (aliceSession, bobSession, first)
    }

    /// A session in which Bob has read Alice's first message, so both sides can send.
    func established() throws -> (alice: RatchetSession, bob: RatchetSession) {
        var (alice, bob, first) = try start()
        _ = try bob.decrypt(first, random: random)
        return (alice, bob)
    }
}

extension ProtocolError {
    var isMalformed: Bool { if case .malformed = self { true } else { false } }
    var isBadSignature: Bool { if case .badSignature = self { true } else { false } }
    var isUnknownPreKey: Bool { if case .unknownPreKey = self { true } else { false } }
    var isSenderMismatch: Bool { if case .senderMismatch = self { true } else { false } }
}

/// The error `body` throws, or nil when it returns: for loops that check thousands of inputs and report
/// the failing ones together.
func errorThrown(by body: () throws -> Void) -> (any Error)? {
    do { try body(); return nil } catch { return error }
}

/// The same bytes with bit 0 of byte `index` flipped.
func flipping(_ bytes: [UInt8], at index: Int) -> [UInt8] {
    var copy = bytes
    copy[index] ^= 0x01
    return copy
}
