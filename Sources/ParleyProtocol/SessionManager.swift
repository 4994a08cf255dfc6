import ParleyCrypto
#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds since the Unix epoch, behind a protocol so tests control it.
public protocol WallClock: Sendable {
    func nowMilliseconds() -> UInt64
}

public struct SystemWallClock: WallClock {
    public init() {}
    public func nowMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

/// Where bundles come from: the relay's prekey directory in production, a table in tests.
public protocol PreKeyBundleSource: Sendable {
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle
}

/// What to do with a sender whose account key this device has never seen (the verification issue refines
/// this into signal-cli's on-first-use / always / never).
public enum NewIdentityPolicy: Sendable {
    case trustOnFirstUse
    case refuse
}

/// This device's own account.
public struct LocalAccount: Sendable {
    public let address: String
    public let accountKey: Ed25519.KeyPair
    public let device: DeviceIdentity
    public var deviceList: SignedDeviceList
    public var certificate: SenderCertificate

    public init(address: String, accountKey: Ed25519.KeyPair, device: DeviceIdentity, deviceList: SignedDeviceList,
                certificateExpiry: UInt64) {
        self.address = address
        self.accountKey = accountKey
        self.device = device
        self.deviceList = deviceList
        certificate = .issue(address: address, accountKey: accountKey, deviceId: device.deviceId, deviceKey: device.publicKey,
                             expiresAt: certificateExpiry)
    }

    public var deviceAddress: DeviceAddress { DeviceAddress(address: address, deviceId: device.deviceId) }

    /// Sender certificates are issued for seven days and renewed by the client.
    public static let certificateLifetime: UInt64 = 7 * 86_400_000

    /// A fresh certificate when less than half of the current one's lifetime is left at `now`.
    public mutating func renewCertificate(now: UInt64) {
        guard certificate.expiresAt < now + Self.certificateLifetime / 2 else { return }
        certificate = .issue(address: address, accountKey: accountKey, deviceId: device.deviceId, deviceKey: device.publicKey,
                             expiresAt: now + Self.certificateLifetime)
    }
}

/// Sesame-style session management (PROTOCOL.md §8): fan-out to every device, active and inactive
/// sessions per device, sealed-sender wrapping and checking. State lives in a `SessionStore`; every
/// operation ends in exactly one `commit`.
public actor SessionManager {
    public private(set) var account: LocalAccount
    private let store: any SessionStore
    private let bundles: any PreKeyBundleSource
    private let clock: any WallClock
    private let random: any RandomSource
    private let newIdentityPolicy: NewIdentityPolicy

    public init(account: LocalAccount, store: any SessionStore, bundles: any PreKeyBundleSource,
                clock: any WallClock = SystemWallClock(), random: any RandomSource = SystemRandom(),
                newIdentityPolicy: NewIdentityPolicy = .trustOnFirstUse) {
        self.account = account
        self.store = store
        self.bundles = bundles
        self.clock = clock
        self.random = random
        self.newIdentityPolicy = newIdentityPolicy
    }

    // MARK: Sending

    /// Encrypts `content` once for every device of `peer` and once for every other device of this account,
    /// commits the new session states together with the envelopes (the outbox), and returns the envelopes.
    public func send(_ content: [UInt8], to peer: AccountAddress) async throws -> [OutgoingEnvelope] {
        try await send(content, to: peer, includeOwnDevices: true, sent: nil)
    }

    /// Sends application content (PROTOCOL.md §12); the store records it with the envelopes. With
    /// `includeOwnDevices: false` only the peer's devices are written to (a retry after the relay said the
    /// peer's device list changed).
    public func send(_ content: Content, to peer: AccountAddress, includeOwnDevices: Bool = true) async throws -> [OutgoingEnvelope] {
        try await send(content.encoded, to: peer, includeOwnDevices: includeOwnDevices,
                       sent: SentContent(content: content, sender: account.deviceAddress))
    }

    private func send(_ content: [UInt8], to peer: AccountAddress, includeOwnDevices: Bool, sent: SentContent?) async throws -> [OutgoingEnvelope] {
        let targets = try targetDevices(for: peer).filter { includeOwnDevices || $0.0.address != account.address || isOwn(peer) }
        let (fetched, current) = try await bundlesForNewSessions(targets)
        var changes = SessionChanges()
        let outgoing = try encrypt(Padding.pad(content), targets: targets, bundles: fetched, sent: sent, into: &changes, current: current)
        try store.commit(changes)
        return outgoing
    }

    /// The only suspension point of a send: bundles for devices without a usable session are fetched
    /// before any state is read for encryption. When none is needed, the sessions read to find out (in
    /// this actor turn, with no suspension since) are handed to encryption; otherwise encryption reads
    /// them again after the fetch.
    private func bundlesForNewSessions(_ targets: [(DeviceAddress, Ed25519.PublicKey)]) async throws
        -> (fetched: [DeviceAddress: PreKeyBundle], current: [DeviceAddress: PeerDeviceSessions]) {
        var current: [DeviceAddress: PeerDeviceSessions] = [:]
        var missing: [DeviceAddress] = []
        for (device, key) in targets {
            let sessions = try store.sessions(for: device)
            current[device] = sessions
            if sessions.active?.remoteIdentityKey != key { missing.append(device) }
        }
        if missing.isEmpty { return ([:], current) }
        var fetched: [DeviceAddress: PreKeyBundle] = [:]
        for device in missing { fetched[device] = try await bundles.bundle(for: device) }
        return (fetched, [:])
    }

    /// Sends several contents to `peer`, in order, as `send(_:to:)` one after another would, but with a
    /// single commit: the session states, every envelope (the outbox) and the history records are stored
    /// together — or, if anything fails, nothing is. Returns the envelopes of each content.
    public func send(batch contents: [Content], to peer: AccountAddress) async throws -> [[OutgoingEnvelope]] {
        let targets = try targetDevices(for: peer)
        let (fetched, current) = try await bundlesForNewSessions(targets)
        var changes = SessionChanges()
        var envelopes: [[OutgoingEnvelope]] = []
        envelopes.reserveCapacity(contents.count)
        for content in contents {
            envelopes.append(try encrypt(Padding.pad(content.encoded), targets: targets, bundles: fetched,
                                         sent: SentContent(content: content, sender: account.deviceAddress), into: &changes,
                                         current: current))
        }
        try store.commit(changes)
        return envelopes
    }

    private func targetDevices(for peer: AccountAddress) throws -> [(DeviceAddress, Ed25519.PublicKey)] {
        let own = account.deviceList.devices.filter { $0.deviceId != account.device.deviceId }
            .map { (DeviceAddress(address: account.address, deviceId: $0.deviceId), $0.identityKey) }
        // Our own account is not in the peer table: its list is `account.deviceList`.
        if isOwn(peer) { return own }
        guard let known = try store.account(peer), let list = known.deviceList else {
            throw ProtocolError.unknownDevice(address: peer.description, deviceId: 0)
        }
        let theirs = list.devices.map { (DeviceAddress(address: peer.description, deviceId: $0.deviceId), $0.identityKey) }
        return theirs + own
    }

    /// Whether `address` is this device's own account.
    private func isOwn(_ address: AccountAddress) -> Bool { address.description == account.address }

    /// Encrypts one content for `targets` on top of `changes` (sessions already advanced there are used
    /// as they stand; then those in `current`, read in this actor turn; then the store's) and adds the new
    /// session states, the envelopes and `sent` to it.
    private func encrypt(_ padded: [UInt8], targets: [(DeviceAddress, Ed25519.PublicKey)],
                         bundles fetched: [DeviceAddress: PreKeyBundle], sent: SentContent?,
                         into changes: inout SessionChanges, current: [DeviceAddress: PeerDeviceSessions] = [:]) throws -> [OutgoingEnvelope] {
        account.renewCertificate(now: clock.nowMilliseconds())
        let batch = sent?.content.messageId ?? []
        var updated: [DeviceAddress: PeerDeviceSessions] = [:]
        var outgoing: [OutgoingEnvelope] = []
        for (device, identityKey) in targets {
            var sessions = try updated[device] ?? changes.sessions[device] ?? current[device] ?? store.sessions(for: device)
            if sessions.active?.remoteIdentityKey != identityKey {
                guard let bundle = fetched[device] else { throw ProtocolError.noSession(address: device.address, deviceId: device.deviceId) }
                guard bundle.identityKey == identityKey, bundle.deviceId == device.deviceId else {
                    throw ProtocolError.senderMismatch("bundle for \(device) does not match its device list entry")
                }
                let initiation = try PQXDH.initiate(identity: account.device, bundle: bundle, random: random)
                sessions.activate(try RatchetSession.initiator(initiation, localIdentity: account.device.publicKey,
                                                               bundle: bundle, random: random))
            }
            var session = sessions.active!
            let message = try session.encrypt(padded)
            let inner: SealedContent.Message = if let preKey = session.pendingPreKey {
                .preKey(PreKeyMessage(preKey: preKey, message: message))
            } else {
                .ratchet(message)
            }
            sessions.active = session
            updated[device] = sessions
            let envelope = try SealedSender.seal(SealedContent(certificate: account.certificate, message: inner),
                                                 to: identityKey, random: random)
            outgoing.append(OutgoingEnvelope(recipient: device, envelope: envelope, batch: batch))
        }
        // Only now, with every target encrypted, does `changes` take anything of this content.
        for (device, sessions) in updated { changes.sessions[device] = sessions }
        if changes.sent == nil && changes.outgoing.isEmpty {
            changes.sent = sent
            changes.outgoing = outgoing
        } else {
            changes.moreSent.append(SentBatch(sent: sent, outgoing: outgoing))
        }
        return outgoing
    }

    // MARK: Receiving

    /// Opens, checks and decrypts one envelope, and commits the session change together with the message.
    /// On any error nothing is committed.
    /// `refusingSessionsFrom`: accounts (blocked ones) whose PreKeyMessages are refused with
    /// `RefusedSession` before anything is decrypted: no session starts, no prekey is used.
    @discardableResult
    public func receive(_ envelope: [UInt8], receivedAt: UInt64? = nil, refusingSessionsFrom refused: Set<String> = []) throws -> ReceivedMessage {
        var changes = SessionChanges()
        var accounts: [AccountAddress: KnownAccount?] = [:]
        let opened = try open(envelope, receivedAt: receivedAt, after: changes, accounts: &accounts, deferUnknownSenders: false,
                              refusing: refused)
        opened.apply(to: &changes)
        try store.commit(changes)
        return opened.received
    }

    /// Receives envelopes in order and commits what all of them changed — ratchet states, sessions
    /// started, prekeys consumed, accounts first seen, and one inbox entry per message — in a single
    /// `commit`, so a page of a mailbox costs one durable write instead of one per message. Each envelope
    /// is decrypted against the state the earlier ones left. One that fails contributes nothing and its
    /// outcome is the error (a repeat of an earlier envelope of the batch is `duplicateOrReplayedMessage`,
    /// as it would be one at a time). With `deferUnknownSenders`, an envelope whose sender account this
    /// device has never seen fails with `UnknownSenderAccount` instead of being taken on first use, so the
    /// caller can look the account up and receive it on its own. If the commit throws, nothing is stored.
    /// `receivedAt`: when the relay took each envelope in (see `open`), if known.
    public func receive(batch envelopes: [[UInt8]], receivedAt: [UInt64]? = nil,
                        deferUnknownSenders: Bool = false) throws -> [Result<ReceivedMessage, any Error>] {
        try receive(batch: envelopes, receivedAt: receivedAt, deferUnknownSenders: deferUnknownSenders) { changes in
            try store.commit(changes)
        }.outcomes
    }

    /// As `receive(batch:)`, but the changes are committed by `commit` (in this actor turn), which can
    /// store more in the same transaction — the client files the messages into its history there — and
    /// whose result is returned (nil when nothing was received, and nothing committed).
    public func receive<Committed: Sendable>(batch envelopes: [[UInt8]], receivedAt: [UInt64]? = nil, deferUnknownSenders: Bool = false,
                                             refusingSessionsFrom refused: Set<String> = [],
                                             commit: @Sendable (SessionChanges) throws -> Committed) throws
        -> (outcomes: [Result<ReceivedMessage, any Error>], committed: Committed?) {
        var changes = SessionChanges()
        var accounts: [AccountAddress: KnownAccount?] = [:]
        var outcomes: [Result<ReceivedMessage, any Error>] = []
        outcomes.reserveCapacity(envelopes.count)
        for (index, envelope) in envelopes.enumerated() {
            do {
                let opened = try open(envelope, receivedAt: receivedAt?[index], after: changes, accounts: &accounts,
                                      deferUnknownSenders: deferUnknownSenders, refusing: refused)
                opened.apply(to: &changes)
                outcomes.append(.success(opened.received))
            } catch {
                outcomes.append(.failure(error))
            }
        }
        let committed = changes.allReceived.isEmpty ? nil : try commit(changes)
        return (outcomes, committed)
    }

    /// What one envelope changes, not yet applied.
    private struct Opened {
        let device: DeviceAddress
        let sessions: PeerDeviceSessions
        let preKeys: LocalPreKeys?
        let firstSeen: (address: AccountAddress, account: KnownAccount)?
        let received: ReceivedMessage

        func apply(to changes: inout SessionChanges) {
            changes.sessions[device] = sessions
            if let preKeys { changes.preKeys = preKeys }
            if let firstSeen { changes.accounts[firstSeen.address] = firstSeen.account }
            if changes.received == nil { changes.received = received } else { changes.moreReceived.append(received) }
        }
    }

    /// Opens, checks and decrypts one envelope against the store as `pending` (changes not yet committed)
    /// leaves it. Changes nothing but `accounts`, the peer accounts read from the store so far.
    ///
    /// The certificate must not have expired when the relay took the envelope in (`receivedAt`, never later
    /// than now): a device that was offline for longer than a certificate's lifetime still reads the mail
    /// that waited for it.
    private func open(_ envelope: [UInt8], receivedAt: UInt64?, after pending: SessionChanges, accounts: inout [AccountAddress: KnownAccount?],
                      deferUnknownSenders: Bool, refusing refused: Set<String> = []) throws -> Opened {
        let sealed = try SealedSender.open(envelope, identity: account.device)
        let certificate = sealed.certificate
        let now = clock.nowMilliseconds()
        try certificate.verify(now: min(now, receivedAt ?? now))
        let firstSeen = try checkSenderAccount(certificate, pending: pending, accounts: &accounts, deferUnknown: deferUnknownSenders)

        let device = DeviceAddress(address: certificate.address, deviceId: certificate.deviceId)
        var sessions = try pending.sessions[device] ?? store.sessions(for: device)
        let padded: [UInt8]
        var startedSession = false
        var consumedPreKeys: LocalPreKeys?
        switch sealed.message {
        case .ratchet(let message):
            padded = try sessions.decrypt(message, device: device, random: random)
        case .preKey(let message):
            if refused.contains(certificate.address) { throw RefusedSession(address: certificate.address) }
            guard message.preKey.identityKey == certificate.deviceKey else {
                throw ProtocolError.senderMismatch("PreKeyMessage identity differs from the sender certificate")
            }
            let outcome = try sessions.receive(message, identity: account.device, device: device,
                                               preKeys: { try pending.preKeys ?? store.preKeys() }, random: random)
            padded = outcome.plaintext
            consumedPreKeys = outcome.remainingPreKeys
            startedSession = outcome.response != nil
        }
        guard sessions.active?.remoteIdentityKey == certificate.deviceKey else {
            throw ProtocolError.senderMismatch("session identity differs from the sender certificate")
        }
        let received = ReceivedMessage(sender: device, certificate: certificate, content: try Padding.unpad(padded),
                                       startedSession: startedSession)
        return Opened(device: device, sessions: sessions, preKeys: consumedPreKeys, firstSeen: firstSeen, received: received)
    }

    /// The certificate's account key must be the one known for its address (or be accepted under the
    /// new-identity policy: the account to remember is returned), and its device must be in the newest
    /// verified device list, when there is one.
    private func checkSenderAccount(_ certificate: SenderCertificate, pending: SessionChanges, accounts: inout [AccountAddress: KnownAccount?],
                                    deferUnknown: Bool) throws -> (address: AccountAddress, account: KnownAccount)? {
        if certificate.address == account.address {
            guard certificate.accountKey == account.accountKey.publicKey,
                  account.deviceList.device(certificate.deviceId)?.identityKey == certificate.deviceKey else {
                throw ProtocolError.unknownDevice(address: certificate.address, deviceId: certificate.deviceId)
            }
            return nil
        }
        // Decoding checked the address's syntax (`SenderCertificate.init(decoding:)`): this parse fails only
        // for a certificate made some other way.
        guard let sender = try? AccountAddress(certificate.address) else {
            throw ProtocolError.malformed("SenderCertificate: the address is not an account address")
        }
        if accounts[sender] == nil { accounts[sender] = .some(try store.account(sender)) }
        guard let known = pending.accounts[sender] ?? accounts[sender] ?? nil else {
            if deferUnknown { throw UnknownSenderAccount(address: certificate.address) }
            guard newIdentityPolicy == .trustOnFirstUse else { throw ProtocolError.identityChanged(address: certificate.address) }
            return (sender, KnownAccount(accountKey: certificate.accountKey))
        }
        guard known.accountKey == certificate.accountKey else { throw ProtocolError.identityChanged(address: certificate.address) }
        if let list = known.deviceList, list.device(certificate.deviceId)?.identityKey != certificate.deviceKey {
            throw ProtocolError.unknownDevice(address: certificate.address, deviceId: certificate.deviceId)
        }
        return nil
    }

    // MARK: Device lists

    /// Accepts a new account key for `address` (after the user's trust policy or decision allowed it):
    /// stores it with its verified device list and deletes every session with the old identity.
    public func replaceIdentity(_ list: SignedDeviceList, for address: AccountAddress) throws {
        precondition(!isOwn(address), "the own identity is replaced by restoring, not here")
        var changes = SessionChanges()
        changes.accounts[address] = KnownAccount(accountKey: list.accountKey, deviceList: list)
        for id in try store.deviceIdsWithSessions(of: address) {
            changes.removedSessions.insert(DeviceAddress(address: address.description, deviceId: id))
        }
        try store.commit(changes)
    }

    /// `updateDeviceList` when `list` is newer than what is known; an equal version is a no-op.
    public func updateDeviceListIfNewer(_ list: SignedDeviceList, for address: AccountAddress) throws {
        let known = isOwn(address) ? account.deviceList : try store.account(address)?.deviceList
        if let known, known.accountKey == list.accountKey, known.version >= list.version { return }
        try updateDeviceList(list, for: address)
    }

    /// Accepts a newer verified device list for `address` and retires the sessions of devices it no longer
    /// names (or whose identity key changed). New devices get sessions on the next send.
    public func updateDeviceList(_ list: SignedDeviceList, for address: AccountAddress) throws {
        var changes = SessionChanges()
        if isOwn(address) {
            try account.deviceList.checkSuccessor(list, address: address.description)
            account.deviceList = list
        } else if let known = try store.account(address) {
            guard known.accountKey == list.accountKey else { throw ProtocolError.identityChanged(address: address.description) }
            if let current = known.deviceList { try current.checkSuccessor(list, address: address.description) }
            changes.accounts[address] = KnownAccount(accountKey: known.accountKey, deviceList: list)
        } else {
            changes.accounts[address] = KnownAccount(accountKey: list.accountKey, deviceList: list)
        }
        for id in try store.deviceIdsWithSessions(of: address) {
            let device = DeviceAddress(address: address.description, deviceId: id)
            let entry = list.device(id)
            let sessions = try store.sessions(for: device)
            if entry == nil || sessions.active.map({ $0.remoteIdentityKey != entry!.identityKey }) == true {
                changes.removedSessions.insert(device)
            }
        }
        try store.commit(changes)
    }
}

/// A session start (PreKeyMessage) from an account the receiver refuses sessions from (a blocked contact):
/// nothing was decrypted or changed.
public struct RefusedSession: Error, Equatable, Sendable {
    public let address: String
}

/// `SessionManager.receive(batch:deferUnknownSenders:)`: the envelope comes from an account this device
/// has never seen; nothing was changed.
public struct UnknownSenderAccount: Error, Equatable, Sendable {
    public let address: String
}
