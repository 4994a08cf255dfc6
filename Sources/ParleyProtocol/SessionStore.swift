import ParleyCrypto

/// The sessions with one peer device: one active, up to `maxInactiveSessions` inactive, newest first.
public struct PeerDeviceSessions: Sendable {
    public var active: RatchetSession?
    public var inactive: [RatchetSession] = []

    public init(active: RatchetSession? = nil, inactive: [RatchetSession] = []) {
        self.active = active
        self.inactive = inactive
    }

    public var isEmpty: Bool { active == nil && inactive.isEmpty }

    /// Makes `session` active; the previously active one becomes the newest inactive one.
    public mutating func activate(_ session: RatchetSession) {
        if let current = active { inactive.insert(current, at: 0) }
        active = session
        if inactive.count > ProtocolConstants.maxInactiveSessions {
            inactive.removeLast(inactive.count - ProtocolConstants.maxInactiveSessions)
        }
    }
}

/// A peer account as this device knows it.
public struct KnownAccount: Sendable, Equatable {
    public var accountKey: Ed25519.PublicKey
    public var deviceList: SignedDeviceList?

    public init(accountKey: Ed25519.PublicKey, deviceList: SignedDeviceList? = nil) {
        self.accountKey = accountKey
        self.deviceList = deviceList
    }
}

/// A decrypted message and who sent it.
public struct ReceivedMessage: Sendable, Equatable {
    public let sender: DeviceAddress
    public let certificate: SenderCertificate
    public let content: [UInt8]
    /// True when this message started a new session (a PreKeyMessage that created one).
    public let startedSession: Bool

    public init(sender: DeviceAddress, certificate: SenderCertificate, content: [UInt8], startedSession: Bool) {
        self.sender = sender
        self.certificate = certificate
        self.content = content
        self.startedSession = startedSession
    }
}

/// One sealed envelope for one recipient device.
public struct OutgoingEnvelope: Sendable, Equatable {
    public let recipient: DeviceAddress
    public let envelope: [UInt8]
    /// The message id of the content this envelope carries: all envelopes of one send share it, and the
    /// relay client posts them per recipient account in one all-or-nothing request.
    public let batch: [UInt8]

    public init(recipient: DeviceAddress, envelope: [UInt8], batch: [UInt8] = []) {
        self.recipient = recipient
        self.envelope = envelope
        self.batch = batch
    }
}

/// Content this device sent, so a store can record it in history in the same transaction as the
/// envelopes that carry it.
public struct SentContent: Sendable, Equatable {
    public let content: Content
    public let sender: DeviceAddress
    public init(content: Content, sender: DeviceAddress) {
        self.content = content
        self.sender = sender
    }
}

/// Everything one send or one receive changes. A store commits it in a single transaction: on receive
/// together with the message, on send together with the outbox entries — so a crash can neither lose a
/// message nor reuse a chain key.
public struct SessionChanges: Sendable {
    public var sessions: [DeviceAddress: PeerDeviceSessions] = [:]
    public var removedSessions: Set<DeviceAddress> = []
    public var accounts: [AccountAddress: KnownAccount] = [:]
    public var preKeys: LocalPreKeys?
    public var received: ReceivedMessage?
    /// Further messages of a batched receive (`SessionManager.receive(batch:)`), in order after `received`;
    /// each goes into the inbox in the same transaction.
    public var moreReceived: [ReceivedMessage] = []
    public var outgoing: [OutgoingEnvelope] = []
    public var sent: SentContent?
    /// Further sends of a batched send (`SessionManager.send(batch:to:)`), in order after `sent` and
    /// `outgoing`, each stored the same way in the same transaction.
    public var moreSent: [SentBatch] = []

    public init() {}

    /// `(sent, outgoing)` followed by `moreSent`.
    public var allSent: [SentBatch] {
        (sent == nil && outgoing.isEmpty ? [] : [SentBatch(sent: sent, outgoing: outgoing)]) + moreSent
    }

    /// `received` followed by `moreReceived`.
    public var allReceived: [ReceivedMessage] { (received.map { [$0] } ?? []) + moreReceived }
}

/// One content's envelopes, and the content when it is application content the store records.
public struct SentBatch: Sendable, Equatable {
    public let sent: SentContent?
    public let outgoing: [OutgoingEnvelope]
    public init(sent: SentContent?, outgoing: [OutgoingEnvelope]) {
        self.sent = sent
        self.outgoing = outgoing
    }
}

/// Storage boundary of the session manager. Calls are synchronous so that the manager (an actor) never
/// suspends between reading a session and committing its successor.
public protocol SessionStore: AnyObject, Sendable {
    func sessions(for device: DeviceAddress) throws -> PeerDeviceSessions
    func deviceIdsWithSessions(of account: AccountAddress) throws -> [UInt32]
    func account(_ address: AccountAddress) throws -> KnownAccount?
    func preKeys() throws -> LocalPreKeys
    func commit(_ changes: SessionChanges) throws
}

/// The store used by unit tests and by the in-process demo.
public final class InMemorySessionStore: SessionStore, @unchecked Sendable {
    private var sessionTable: [DeviceAddress: PeerDeviceSessions] = [:]
    private var accountTable: [AccountAddress: KnownAccount] = [:]
    private var preKeyState: LocalPreKeys
    private let lock = Lock()
    public private(set) var receivedLog: [ReceivedMessage] = []
    public private(set) var outbox: [OutgoingEnvelope] = []

    public init(preKeys: LocalPreKeys) { preKeyState = preKeys }

    public func sessions(for device: DeviceAddress) -> PeerDeviceSessions {
        lock.withLock { sessionTable[device] ?? PeerDeviceSessions() }
    }
    public func deviceIdsWithSessions(of account: AccountAddress) -> [UInt32] {
        let address = account.description
        return lock.withLock { sessionTable.keys.filter { $0.address == address }.map(\.deviceId).sorted() }
    }
    public func account(_ address: AccountAddress) -> KnownAccount? { lock.withLock { accountTable[address] } }
    public func preKeys() -> LocalPreKeys { lock.withLock { preKeyState } }

    public func commit(_ changes: SessionChanges) {
        lock.withLock {
            for (device, sessions) in changes.sessions { sessionTable[device] = sessions }
            for device in changes.removedSessions { sessionTable[device] = nil }
            for (address, account) in changes.accounts { accountTable[address] = account }
            if let keys = changes.preKeys { preKeyState = keys }
            receivedLog.append(contentsOf: changes.allReceived)
            for batch in changes.allSent { outbox.append(contentsOf: batch.outgoing) }
        }
    }

    /// Replaces what is known of an account (contact added by address, device list fetched).
    public func setAccount(_ account: KnownAccount, for address: AccountAddress) {
        lock.withLock { accountTable[address] = account }
    }

    public func drainOutbox() -> [OutgoingEnvelope] {
        lock.withLock { defer { outbox.removeAll() }; return outbox }
    }
}
