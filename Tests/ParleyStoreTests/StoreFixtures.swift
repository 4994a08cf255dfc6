import Testing
import Foundation
import GRDB
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

// MARK: Stores

/// A new store at `path` with the test passphrase and cheap Argon2id limits.
func makeStore(_ path: String, unlock: [UnlockMethod] = [.passphrase(passphrase)]) throws -> EncryptedStore {
    try EncryptedStore.create(at: path, unlock: unlock, parameters: testParameters)
}

func openStore(_ path: String, _ secret: SecretBytes = passphrase) throws -> EncryptedStore {
    try EncryptedStore.open(at: path, unlock: .passphrase(secret))
}

func secret(_ text: String) -> SecretBytes { SecretBytes(Array(text.utf8)) }

// MARK: Raw access (a separate SQLite connection, as an attacker with the file would have)

/// Runs `body` on a separate GRDB connection to the file, bypassing EncryptedStore entirely.
func raw<R>(_ path: String, _ body: (Database) throws -> R) throws -> R {
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try queue.write(body)
}

func rawCell(_ path: String, _ sql: String, _ arguments: StatementArguments = []) throws -> Data {
    try #require(try raw(path) { try Data.fetchOne($0, sql: sql, arguments: arguments) })
}

/// Every row of every table, blobs in hex, ordered by primary key: two dumps are equal exactly when
/// the stored contents are byte-identical.
func dump(_ path: String, tables: [String]? = nil) throws -> [String: [String]] {
    try raw(path) { db in
        let names = try tables ?? String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        var out: [String: [String]] = [:]
        for name in names {
            out[name] = try Row.fetchAll(db, sql: "SELECT * FROM \(name) ORDER BY 1").map { row in
                row.databaseValues.map { value in
                    if case .blob(let data) = value.storage { return data.map { String(format: "%02x", $0) }.joined() }
                    return value.description
                }.joined(separator: "|")
            }
        }
        return out
    }
}

func fileBytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }
func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
func sha256(_ path: String) -> [UInt8] { SHA256.hash([UInt8](fileBytes(path))) }
func writeFile(_ path: String, _ bytes: some Sequence<UInt8>) { FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

func fileMode(_ path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
}

// MARK: Accounts and messages

/// A one-device account, deterministic in `address`.
func makeAccount(_ address: String, clock: FixedClock = FixedClock()) -> LocalAccount {
    let random = DeterministicRandom(label: address)
    let accountKey = Ed25519.KeyPair(random: random)
    let device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
    let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: 1_700_000_000_000)],
                                     version: 1, accountKey: accountKey)
    return LocalAccount(address: address, accountKey: accountKey, device: device, deviceList: list,
                        certificateExpiry: clock.now + 86_400_000)
}

/// What a peer knows of `account` after adding it as a contact.
func known(_ account: LocalAccount) -> KnownAccount {
    KnownAccount(accountKey: account.accountKey.publicKey, deviceList: account.deviceList)
}

/// A real ratchet session from `local` to the device of `remote` (whose prekeys are `remoteKeys`).
func ratchetSession(from local: LocalAccount, to remote: LocalAccount, remoteKeys: LocalPreKeys) throws -> RatchetSession {
    let bundle = remoteKeys.bundle(identity: remote.device)
    let initiation = try PQXDH.initiate(identity: local.device, bundle: bundle)
    return try RatchetSession.initiator(initiation, localIdentity: local.device.publicKey, bundle: bundle)
}

/// Application content as a client sends it: a text with a fixed message id.
func textContent(_ text: String, to destination: String, id: UInt8) -> [UInt8] {
    Content(messageId: [UInt8](repeating: id, count: Content.messageIdLength), sentAt: FixedClock().now,
            destination: destination, body: .text(text)).encoded
}

/// The history record a client files for a received text message.
func record(of received: ReceivedMessage) throws -> MessageRecord {
    let content = try Content(decoding: received.content)
    guard case .text(let text) = content.body else { throw ProtocolError.malformed("not a text") }
    return MessageRecord(conversation: direct(received.sender.address), direction: .incoming, sender: received.sender,
                         clientMessageId: content.messageId, sentAt: content.sentAt, receivedAt: FixedClock().now,
                         text: text, state: .received)
}

// MARK: Session managers on real stores

/// Forwards to an EncryptedStore and records every commit the session manager makes.
final class RecordingStore: SessionStore, @unchecked Sendable {
    let base: EncryptedStore
    private var log: [SessionChanges] = []
    private let lock = Lock()
    init(_ base: EncryptedStore) { self.base = base }

    var commits: [SessionChanges] { lock.withLock { log } }
    func sessions(for device: DeviceAddress) throws -> PeerDeviceSessions { try base.sessions(for: device) }
    func deviceIdsWithSessions(of account: AccountAddress) throws -> [UInt32] { try base.deviceIdsWithSessions(of: account) }
    func account(_ address: AccountAddress) throws -> KnownAccount? { try base.account(address) }
    func preKeys() throws -> LocalPreKeys { try base.preKeys() }
    func commit(_ changes: SessionChanges) throws {
        try base.commit(changes)
        lock.withLock { log.append(changes) }
    }
}

/// One device: its account, its encrypted store, and a session manager on that store.
struct Device {
    let account: LocalAccount
    let store: EncryptedStore
    let recorder: RecordingStore
    let manager: SessionManager
    var address: DeviceAddress { account.deviceAddress }
    var path: String { store.path }
}

/// Devices whose stores live in one temporary directory and share one prekey directory.
struct StoreWorld {
    let directory = try! TemporaryDirectory("store")
    let bundles = PreKeyDirectory()
    let clock = FixedClock()

    /// A new account in a new store at `<name>.db`, with three one-time prekeys of each kind.
    func device(_ address: String) throws -> Device {
        let account = makeAccount(address, clock: clock)
        let store = try makeStore(directory.sub("\(address).db"))
        try store.saveLocalAccount(account, preKeys: .generate(oneTime: 3))
        return attach(store, account: account)
    }

    /// A session manager on an existing store, its bundles served from that store.
    func attach(_ store: EncryptedStore, account: LocalAccount? = nil) -> Device {
        let account = account ?? (try! store.localAccount()!)
        let recorder = RecordingStore(store)
        bundles.register(account.deviceAddress, identity: account.device, preKeys: { try store.preKeys() })
        return Device(account: account, store: store, recorder: recorder,
                      manager: SessionManager(account: account, store: recorder, bundles: bundles, clock: clock))
    }

    /// Each side adds the other as a contact (account key and device list).
    func introduce(_ a: Device, _ b: Device) throws {
        try a.store.saveContact(Contact(address: try AccountAddress(b.account.address), account: known(b.account)))
        try b.store.saveContact(Contact(address: try AccountAddress(a.account.address), account: known(a.account)))
    }
}

/// Sends `text` from `sender` to `recipient`'s account and delivers the envelope meant for `recipient`.
@discardableResult
func exchange(_ text: String, from sender: Device, to recipient: Device, id: UInt8) async throws -> ReceivedMessage {
    let envelopes = try await sender.manager.send(textContent(text, to: recipient.account.address, id: id),
                                                  to: try AccountAddress(recipient.account.address))
    let envelope = try #require(envelopes.first { $0.recipient == recipient.address })
    return try await recipient.manager.receive(envelope.envelope)
}

// MARK: Error matching

extension StoreError {
    var isBackupInvalid: Bool { if case .backupInvalid = self { true } else { false } }
    var isNotADatabase: Bool { if case .notADatabase = self { true } else { false } }
    var isCorrupt: Bool { if case .corrupt = self { true } else { false } }
    var isTamperedRow: Bool { if case .tamperedRow = self { true } else { false } }
}

// MARK: Conversations by address

/// The direct conversation with `address`.
func direct(_ address: String) -> ConversationId { try! ConversationId(destination: address) }

/// Tests write a direct conversation as its address.
extension ConversationId: ExpressibleByStringLiteral {
    public init(stringLiteral address: String) { self = .direct(try! AccountAddress(address)) }
}

extension EncryptedStore {
    func messages(with peer: String, before: Int64? = nil, limit: Int = 200) throws -> [MessageRecord] {
        try messages(in: direct(peer), before: before, limit: limit)
    }
}

/// Tests write an account address as its text.
extension AccountAddress: ExpressibleByStringLiteral {
    public init(stringLiteral text: String) { try! self.init(text) }
}
