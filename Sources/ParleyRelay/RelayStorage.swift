import ParleyProtocol

/// One queued envelope for one device.
public struct StoredEnvelope: Sendable, Equatable {
    public let id: Int64
    public let envelope: [UInt8]
    public let receivedAt: UInt64
}

/// A page of a device's mailbox, and how many one-time prekeys of each kind the device has left.
public struct MailboxPage: Sendable, Equatable {
    public let messages: [StoredEnvelope]
    /// More envelopes are queued beyond this page.
    public let more: Bool
    public let oneTimePreKeys: Int
    public let oneTimePQPreKeys: Int
    /// Envelopes the acknowledgement before this page deleted (`acknowledge(_:for:thenFetch:after:now:)`).
    public var acknowledged = 0
}

/// A device's prekeys as uploaded (public halves and signatures only).
public struct StoredSignedKey: Sendable, Equatable {
    public let id: UInt32
    public let key: [UInt8]
    public let signature: [UInt8]
}

/// Results of an all-or-nothing multi-device enqueue.
public enum EnqueueResult: Sendable, Equatable {
    case stored
    /// The account's device list is no longer the one the caller checked the send against.
    case deviceListChanged
    case mailboxFull(deviceId: UInt32)
    case unknownAccount
}

/// An account as stored: its key and its signed device list, as bytes. The storage never parses or
/// verifies the list; `RelayCore` verifies it on every read, so a row changed behind the relay's back
/// is refused rather than trusted.
public struct StoredAccount: Sendable, Equatable {
    public let accountKey: [UInt8]
    public let deviceList: [UInt8]
    public init(accountKey: [UInt8], deviceList: [UInt8]) {
        self.accountKey = accountKey
        self.deviceList = deviceList
    }
}
/// An attachment slot: its size, whether it is filled, and the SHA-256 of its upload secret (nil for a slot
/// made before slots had secrets, which can no longer be filled).
public struct StoredAttachment: Sendable, Equatable {
    public let size: Int
    public let complete: Bool
    public let uploadSecretHash: [UInt8]?
}

/// A provisioning slot as a new device polls it.
public enum ProvisioningState: Sendable, Equatable {
    case unknown
    case waiting
    case filled([UInt8])
}

/// Everything the relay keeps, behind a protocol so the routes never see SQL. Storages only store: the
/// rules (which devices a send must name, whose mail and prekeys go when a device list changes, what a
/// device list must be) are `RelayCore`'s. Where a rule must hold against concurrent requests the core
/// passes what it checked against (the device list's bytes, a limit), and the storage writes only if
/// that still holds, in one transaction. `SQLiteRelayStorage` is the embedded default;
/// `PostgresRelayStorage` is shared by several relay nodes (with `PostgresWakeBroker` for wake-ups).
public protocol RelayStorage: Sendable {
    /// Bytes the storage can fill again without growing its files (the database's free pages).
    func reusableBytes() async throws -> UInt64

    // Accounts and device lists
    /// False, storing nothing, when the address is taken.
    func createAccount(address: String, accountKey: [UInt8], deviceList: [UInt8]) async throws -> Bool
    func account(_ address: String) async throws -> StoredAccount?
    /// Replaces the device list if it is still `current`, deleting the tokens, prekeys and queued mail of
    /// the devices in `wiping` in the same transaction; false, changing nothing, if the list changed.
    func replaceDeviceList(address: String, replacing current: [UInt8], with list: [UInt8], wiping: [UInt32]) async throws -> Bool
    /// The verifier of the account's delivery access key (PROTOCOL.md §13.1), nil while it has none (an
    /// account made by a version-1 client) or when there is no such account.
    func deliveryAccessVerifier(of address: String) async throws -> [UInt8]?
    func setDeliveryAccessVerifier(_ verifier: [UInt8], for address: String) async throws

    // Device authentication
    func storeChallenge(_ challenge: [UInt8], address: String, deviceId: UInt32, expiresAt: UInt64) async throws
    /// Deletes and returns the challenge's owner if it exists and has not expired (single use).
    func takeChallenge(_ challenge: [UInt8], now: UInt64) async throws -> DeviceAddress?
    func storeToken(hash: [UInt8], device: DeviceAddress, expiresAt: UInt64) async throws
    func device(forTokenHash hash: [UInt8], now: UInt64) async throws -> DeviceAddress?
    func revokeTokens(of device: DeviceAddress) async throws

    // Prekeys
    /// Stores the keys in one transaction; false (and nothing stored) when the device would then hold more
    /// than `limit` one-time prekeys of a kind. The limit is the core's; it is applied inside the
    /// transaction because a count read before it would let two concurrent uploads pass it together.
    func storePreKeys(for device: DeviceAddress, signed: StoredSignedKey?, lastResort: StoredSignedKey?,
                      oneTime: [StoredSignedKey], oneTimePQ: [StoredSignedKey], limit: Int) async throws -> Bool
    func preKeyCounts(for device: DeviceAddress) async throws -> (oneTime: Int, oneTimePQ: Int)
    /// The device's signed and last-resort keys, plus (when `oneTime`) one one-time key of each kind, which
    /// are removed.
    func takeBundleKeys(for device: DeviceAddress, oneTime: Bool) async throws
        -> (signed: StoredSignedKey, lastResort: StoredSignedKey, oneTime: StoredSignedKey?, oneTimePQ: StoredSignedKey?)?

    // Mailboxes
    /// Queues the envelopes, in order, all or none: only while the account's device list is still
    /// `deviceList` (the one the caller checked the send against), and only if no device's mailbox would
    /// then hold more than `mailboxLimit`. Ids grow in the order envelopes for one account are stored.
    func enqueue(_ envelopes: [(deviceId: UInt32, envelope: [UInt8])], for address: String, ifDeviceList deviceList: [UInt8],
                 now: UInt64, expiresAt: UInt64, mailboxLimit: Int) async throws -> EnqueueResult
    /// The oldest unexpired envelopes of the device's mailbox with ids above `after`, with its prekey
    /// counts (one read). Ids only grow, so a client that has a page in hand can ask for what follows it.
    func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64) async throws -> MailboxPage
    /// Deletes the given ids from this device's mailbox only; ids of other mailboxes are ignored.
    func acknowledge(_ ids: [Int64], for device: DeviceAddress) async throws -> Int
    /// Deletes as `acknowledge` does, then reads the next page as `fetch` does: a client that keeps
    /// receiving needs one request, and the relay one trip to the database, per page.
    func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64) async throws -> MailboxPage
    func purgeExpired(now: UInt64) async throws -> Int

    // Provisioning slots (linking a new device; PROTOCOL.md §15)
    func createProvisioning(id: String, expiresAt: UInt64) async throws
    /// Stores the sealed message in an empty, unexpired slot; false if there is none (unknown, expired or
    /// already filled).
    func fillProvisioning(id: String, message: [UInt8], now: UInt64) async throws -> Bool
    /// The slot's message, removing the slot once it is collected.
    func takeProvisioning(id: String, now: UInt64) async throws -> ProvisioningState

    // Attachments (nothing here names who uploaded a blob)
    func createAttachment(id: String, uploadSecretHash: [UInt8], size: Int, expiresAt: UInt64) async throws
    func attachment(_ id: String, now: UInt64) async throws -> StoredAttachment?
    /// Counts a new slot of `bytes` against `account`'s use in `window` (earlier windows are forgotten);
    /// false, counting nothing, when it would pass `limits`.
    func chargeAttachmentQuota(account: String, window: UInt64, bytes: Int, limits: AttachmentQuota) async throws -> Bool
    func markAttachmentComplete(_ id: String) async throws
    func expiredAttachments(now: UInt64) async throws -> [String]
    func deleteAttachment(_ id: String) async throws
}

extension RelayStorage {
    public func reusableBytes() async throws -> UInt64 { 0 }
}
