import ParleyProtocol

/// One queued envelope for one device.
public struct StoredEnvelope: Sendable, Equatable {
    public let id: Int64
    /// Empty for a group message's entry (the message is `group`'s, stored once for all its recipients).
    public let envelope: [UInt8]
    public let receivedAt: UInt64
    public var group: StoredGroupMessage? = nil
}

/// A group message as a mailbox entry carries it: the one stored copy.
public struct StoredGroupMessage: Sendable, Equatable {
    public let groupId: [UInt8]
    /// The epoch it was sent in (for a commit, the epoch it ends).
    public let epoch: UInt64
    public let isCommit: Bool
    public let message: [UInt8]
}

/// A group as the relay knows it: an opaque id, its epoch, and the verifier of the epoch's send secret.
public struct StoredGroup: Sendable, Equatable {
    public let epoch: UInt64
    public let verifier: [UInt8]
}

/// A group message to store once, with an entry in each recipient device's mailbox. With `nextVerifier`
/// it is a commit: stored only if the group is still at `epoch`, which it then leaves for `epoch + 1`.
public struct GroupMessageWrite: Sendable {
    public let groupId: [UInt8]
    public let epoch: UInt64
    public let nextVerifier: [UInt8]?
    public let message: [UInt8]
    public let recipients: [DeviceAddress]
    /// The device list of each recipient account as the core checked the recipients against it.
    public let deviceLists: [String: [UInt8]]
    public let now: UInt64
    public let expiresAt: UInt64
    public let mailboxLimit: Int
    /// A commit's GroupInfo of the next epoch and its rejoiners (encoded by the core), kept in place of the
    /// previous epoch's; a commit without them leaves the group with none (PROTOCOL.md §17.9).
    public var groupInfo: [UInt8]? = nil
    public var rejoiners: [UInt8]? = nil
    /// A commit's Welcome: stored as a second copy, a message of the next epoch, with an entry for each
    /// device it adds, in the commit's transaction (their accounts' lists are among `deviceLists`).
    public var welcome: GroupWelcomeWrite? = nil
}

public struct GroupWelcomeWrite: Sendable {
    public let message: [UInt8]
    public let recipients: [DeviceAddress]
    public init(message: [UInt8], recipients: [DeviceAddress]) {
        self.message = message
        self.recipients = recipients
    }
}

/// The GroupInfo the last commit left (PROTOCOL.md §17.9): opaque bytes, the epoch the commit started,
/// and the devices (encoded by the core) that may fetch it and rejoin.
public struct StoredGroupInfo: Sendable, Equatable {
    public let epoch: UInt64
    public let groupInfo: [UInt8]
    public let rejoiners: [UInt8]
}

/// Results of `storeGroupMessage`: stored for every recipient, or for none.
public enum GroupWriteResult: Sendable, Equatable {
    case stored
    case unknownGroup
    /// The group is at another epoch than the write's.
    case epochIs(UInt64)
    case deviceListChanged
    case mailboxFull(DeviceAddress)
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
    /// The device's KeyPackages, when the storage counted them in the page's own read (a page with groups):
    /// nil sends the relay to `keyPackageCount(for:)`, a database trip of its own on every page.
    public var keyPackages: Int?
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
    /// The accounts of `addresses` in one read (one snapshot, one query where reads cost a trip to a
    /// server): the recipients of a group message or commit. Addresses without an account are absent.
    func accounts(_ addresses: [String]) async throws -> [String: StoredAccount]
    /// Replaces the device list if it is still `current`, deleting the tokens, prekeys and queued mail of
    /// the devices in `wiping` in the same transaction; false, changing nothing, if the list changed.
    func replaceDeviceList(address: String, replacing current: [UInt8], with list: [UInt8], wiping: [UInt32]) async throws -> Bool
    /// Moves the account to a new account key (PROTOCOL.md §3.5) if its list is still `current`: the key,
    /// the list and the old key's statement (`keyChange`, kept for contacts to read) in one transaction,
    /// wiping the devices in `wiping` as `replaceDeviceList` does; false, changing nothing, if the list changed.
    func replaceAccountKey(address: String, replacing current: [UInt8], accountKey: [UInt8], deviceList: [UInt8],
                           keyChange: [UInt8], wiping: [UInt32]) async throws -> Bool
    /// The statement of the account's latest key change, nil if its key never changed.
    func accountKeyChange(of address: String) async throws -> [UInt8]?
    /// The verifier of the account's delivery access key (PROTOCOL.md §13.1), nil while it has none (an
    /// account made by a version-1 client) or when there is no such account.
    func deliveryAccessVerifier(of address: String) async throws -> [UInt8]?
    func setDeliveryAccessVerifier(_ verifier: [UInt8], for address: String) async throws
    /// The account and its verifier as one read, for a send's admission and its device-list check (a
    /// storage where reads cost a trip to a server answers both at once).
    func accountForDelivery(_ address: String) async throws -> (account: StoredAccount, verifier: [UInt8]?)?

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
    /// A stored enqueue already woke its recipients (through the wake broker's channel, with its commit):
    /// the core does not wake them again.
    var wakesRecipientsOnEnqueue: Bool { get }
    /// The oldest unexpired envelopes of the device's mailbox with ids above `after`, with its prekey
    /// counts (one read). Ids only grow, so a client that has a page in hand can ask for what follows it.
    /// `groups`: group messages' entries are part of the page (fetch version 2); without, they are left out.
    func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64, groups: Bool) async throws -> MailboxPage
    /// Deletes the given ids from this device's mailbox only; ids of other mailboxes are ignored.
    func acknowledge(_ ids: [Int64], for device: DeviceAddress) async throws -> Int
    /// Deletes as `acknowledge` does, then reads the next page as `fetch` does: a client that keeps
    /// receiving needs one request, and the relay one trip to the database, per page.
    func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64, groups: Bool) async throws -> MailboxPage
    /// `acknowledge(_:for:thenFetch:…)` for the device whose unexpired token hashes to `tokenHash`, the
    /// token checked in the same read where the storage can (one trip to a database server per request);
    /// nil, changing nothing, when there is no such token.
    func acknowledge(_ ids: [Int64], forTokenHash tokenHash: [UInt8], thenFetch limit: Int, after: Int64, now: UInt64,
                     groups: Bool) async throws -> (device: DeviceAddress, page: MailboxPage)?
    /// Deletes expired envelopes, and the stored copies of group messages that expired or that every
    /// recipient acknowledged.
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

    // KeyPackages (MLS; PROTOCOL.md §17.1)
    /// Stores the packages (and replaces the last-resort one when given) in one transaction; false, storing
    /// nothing, when the device would then hold more than `limit`.
    func storeKeyPackages(_ packages: [[UInt8]], lastResort: [UInt8]?, for device: DeviceAddress, limit: Int) async throws -> Bool
    func keyPackageCount(for device: DeviceAddress) async throws -> (count: Int, lastResort: Bool)
    /// Removes and returns the device's oldest KeyPackage; when none is left, its last-resort one, which
    /// stays. Two concurrent claims never get the same package.
    func claimKeyPackage(for device: DeviceAddress) async throws -> (package: [UInt8], lastResort: Bool)?

    // Groups (PROTOCOL.md §17.2)
    /// Registers the group at epoch 0; false if the id is taken.
    func createGroup(_ groupId: [UInt8], verifier: [UInt8]) async throws -> Bool
    func group(_ groupId: [UInt8]) async throws -> StoredGroup?
    /// Stores the message once with an entry per recipient (ids growing as for `enqueue`), all or nothing,
    /// only while the group is at `write.epoch` and every recipient account's list is the one given; a
    /// commit moves the group to the next epoch in the same transaction, so of two commits for one epoch
    /// exactly one is stored, even from different relay nodes.
    func storeGroupMessage(_ write: GroupMessageWrite) async throws -> GroupWriteResult
    /// The GroupInfo the commit that started the group's current epoch left, if it left one.
    func groupInfo(_ groupId: [UInt8]) async throws -> StoredGroupInfo?
}

extension RelayStorage {
    /// Version 1 of the mailbox: 1:1 envelopes only.
    public func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64) async throws -> MailboxPage {
        try await fetch(for: device, now: now, limit: limit, after: after, groups: false)
    }

    public func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64) async throws -> MailboxPage {
        try await acknowledge(ids, for: device, thenFetch: limit, after: after, now: now, groups: false)
    }
}

extension RelayStorage {
    public func reusableBytes() async throws -> UInt64 { 0 }

    public var wakesRecipientsOnEnqueue: Bool { false }

    public func accountForDelivery(_ address: String) async throws -> (account: StoredAccount, verifier: [UInt8]?)? {
        guard let account = try await account(address) else { return nil }
        return (account, try await deliveryAccessVerifier(of: address))
    }

    /// The token's check, then the acknowledgement and page: two reads.
    public func acknowledge(_ ids: [Int64], forTokenHash tokenHash: [UInt8], thenFetch limit: Int, after: Int64, now: UInt64,
                            groups: Bool) async throws -> (device: DeviceAddress, page: MailboxPage)? {
        guard let device = try await device(forTokenHash: tokenHash, now: now) else { return nil }
        return (device, try await acknowledge(ids, for: device, thenFetch: limit, after: after, now: now, groups: groups))
    }
}
