import Metrics
import ParleyProtocol

/// A storage that times every call of the one it wraps (`parley_relay_storage_seconds`, by operation):
/// the database latency the relay waits for, whichever database it is. Only used with `--metrics`.
struct InstrumentedRelayStorage: RelayStorage {
    let inner: any RelayStorage
    let metrics: RelayMetrics

    private func timed<T>(_ operation: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { metrics.storageTimer(operation).record(duration: start.duration(to: .now)) }
        return try await body()
    }

    func reusableBytes() async throws -> UInt64 { try await timed("reusable_bytes") { try await inner.reusableBytes() } }

    func createAccount(address: String, accountKey: [UInt8], deviceList: [UInt8]) async throws -> Bool {
        try await timed("create_account") { try await inner.createAccount(address: address, accountKey: accountKey, deviceList: deviceList) }
    }
    func account(_ address: String) async throws -> StoredAccount? {
        try await timed("account") { try await inner.account(address) }
    }
    func accounts(_ addresses: [String]) async throws -> [String: StoredAccount] {
        try await timed("accounts") { try await inner.accounts(addresses) }
    }
    func replaceDeviceList(address: String, replacing current: [UInt8], with list: [UInt8], wiping: [UInt32]) async throws -> Bool {
        try await timed("replace_device_list") { try await inner.replaceDeviceList(address: address, replacing: current, with: list, wiping: wiping) }
    }
    func replaceAccountKey(address: String, replacing current: [UInt8], accountKey: [UInt8], deviceList: [UInt8],
                           keyChange: [UInt8], wiping: [UInt32]) async throws -> Bool {
        try await timed("replace_account_key") {
            try await inner.replaceAccountKey(address: address, replacing: current, accountKey: accountKey, deviceList: deviceList,
                                              keyChange: keyChange, wiping: wiping)
        }
    }
    func accountKeyChange(of address: String) async throws -> [UInt8]? {
        try await timed("account_key_change") { try await inner.accountKeyChange(of: address) }
    }
    func deliveryAccessVerifier(of address: String) async throws -> [UInt8]? {
        try await timed("delivery_access_verifier") { try await inner.deliveryAccessVerifier(of: address) }
    }
    func accountForDelivery(_ address: String) async throws -> (account: StoredAccount, verifier: [UInt8]?)? {
        try await timed("account_for_delivery") { try await inner.accountForDelivery(address) }
    }
    func setDeliveryAccessVerifier(_ verifier: [UInt8], for address: String) async throws {
        try await timed("set_delivery_access_verifier") { try await inner.setDeliveryAccessVerifier(verifier, for: address) }
    }

    func storeChallenge(_ challenge: [UInt8], address: String, deviceId: UInt32, expiresAt: UInt64) async throws {
        try await timed("store_challenge") { try await inner.storeChallenge(challenge, address: address, deviceId: deviceId, expiresAt: expiresAt) }
    }
    func takeChallenge(_ challenge: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        try await timed("take_challenge") { try await inner.takeChallenge(challenge, now: now) }
    }
    func storeToken(hash: [UInt8], device: DeviceAddress, expiresAt: UInt64) async throws {
        try await timed("store_token") { try await inner.storeToken(hash: hash, device: device, expiresAt: expiresAt) }
    }
    func device(forTokenHash hash: [UInt8], now: UInt64) async throws -> DeviceAddress? {
        try await timed("device_for_token") { try await inner.device(forTokenHash: hash, now: now) }
    }
    func revokeTokens(of device: DeviceAddress) async throws {
        try await timed("revoke_tokens") { try await inner.revokeTokens(of: device) }
    }

    func storePreKeys(for device: DeviceAddress, signed: StoredSignedKey?, lastResort: StoredSignedKey?,
                      oneTime: [StoredSignedKey], oneTimePQ: [StoredSignedKey], limit: Int) async throws -> Bool {
        try await timed("store_prekeys") {
            try await inner.storePreKeys(for: device, signed: signed, lastResort: lastResort, oneTime: oneTime, oneTimePQ: oneTimePQ, limit: limit)
        }
    }
    func preKeyCounts(for device: DeviceAddress) async throws -> (oneTime: Int, oneTimePQ: Int) {
        try await timed("prekey_counts") { try await inner.preKeyCounts(for: device) }
    }
    func takeBundleKeys(for device: DeviceAddress, oneTime: Bool) async throws
        -> (signed: StoredSignedKey, lastResort: StoredSignedKey, oneTime: StoredSignedKey?, oneTimePQ: StoredSignedKey?)? {
        try await timed("take_bundle_keys") { try await inner.takeBundleKeys(for: device, oneTime: oneTime) }
    }

    func enqueue(_ envelopes: [(deviceId: UInt32, envelope: [UInt8])], for address: String, ifDeviceList deviceList: [UInt8],
                 now: UInt64, expiresAt: UInt64, mailboxLimit: Int) async throws -> EnqueueResult {
        try await timed("enqueue") {
            try await inner.enqueue(envelopes, for: address, ifDeviceList: deviceList, now: now, expiresAt: expiresAt, mailboxLimit: mailboxLimit)
        }
    }
    var wakesRecipientsOnEnqueue: Bool { inner.wakesRecipientsOnEnqueue }
    func fetch(for device: DeviceAddress, now: UInt64, limit: Int, after: Int64, groups: Bool) async throws -> MailboxPage {
        try await timed("fetch") { try await inner.fetch(for: device, now: now, limit: limit, after: after, groups: groups) }
    }
    func acknowledge(_ ids: [Int64], for device: DeviceAddress) async throws -> Int {
        try await timed("acknowledge") { try await inner.acknowledge(ids, for: device) }
    }
    func acknowledge(_ ids: [Int64], for device: DeviceAddress, thenFetch limit: Int, after: Int64, now: UInt64, groups: Bool) async throws -> MailboxPage {
        try await timed("acknowledge_fetch") { try await inner.acknowledge(ids, for: device, thenFetch: limit, after: after, now: now, groups: groups) }
    }
    func acknowledge(_ ids: [Int64], forTokenHash tokenHash: [UInt8], thenFetch limit: Int, after: Int64, now: UInt64,
                     groups: Bool) async throws -> (device: DeviceAddress, page: MailboxPage)? {
        try await timed("acknowledge_fetch_by_token") {
            try await inner.acknowledge(ids, forTokenHash: tokenHash, thenFetch: limit, after: after, now: now, groups: groups)
        }
    }
    func purgeExpired(now: UInt64) async throws -> Int {
        try await timed("purge_expired") { try await inner.purgeExpired(now: now) }
    }

    func createProvisioning(id: String, expiresAt: UInt64) async throws {
        try await timed("create_provisioning") { try await inner.createProvisioning(id: id, expiresAt: expiresAt) }
    }
    func fillProvisioning(id: String, message: [UInt8], now: UInt64) async throws -> Bool {
        try await timed("fill_provisioning") { try await inner.fillProvisioning(id: id, message: message, now: now) }
    }
    func takeProvisioning(id: String, now: UInt64) async throws -> ProvisioningState {
        try await timed("take_provisioning") { try await inner.takeProvisioning(id: id, now: now) }
    }

    func createAttachment(id: String, uploadSecretHash: [UInt8], size: Int, expiresAt: UInt64) async throws {
        try await timed("create_attachment") { try await inner.createAttachment(id: id, uploadSecretHash: uploadSecretHash, size: size, expiresAt: expiresAt) }
    }
    func attachment(_ id: String, now: UInt64) async throws -> StoredAttachment? {
        try await timed("attachment") { try await inner.attachment(id, now: now) }
    }
    func chargeAttachmentQuota(account: String, window: UInt64, bytes: Int, limits: AttachmentQuota) async throws -> Bool {
        try await timed("charge_attachment_quota") { try await inner.chargeAttachmentQuota(account: account, window: window, bytes: bytes, limits: limits) }
    }
    func markAttachmentComplete(_ id: String) async throws {
        try await timed("mark_attachment_complete") { try await inner.markAttachmentComplete(id) }
    }
    func expiredAttachments(now: UInt64) async throws -> [String] {
        try await timed("expired_attachments") { try await inner.expiredAttachments(now: now) }
    }
    func deleteAttachment(_ id: String) async throws {
        try await timed("delete_attachment") { try await inner.deleteAttachment(id) }
    }

    func storeKeyPackages(_ packages: [[UInt8]], lastResort: [UInt8]?, for device: DeviceAddress, limit: Int) async throws -> Bool {
        try await timed("store_key_packages") { try await inner.storeKeyPackages(packages, lastResort: lastResort, for: device, limit: limit) }
    }
    func keyPackageCount(for device: DeviceAddress) async throws -> (count: Int, lastResort: Bool) {
        try await timed("key_package_count") { try await inner.keyPackageCount(for: device) }
    }
    func claimKeyPackage(for device: DeviceAddress) async throws -> (package: [UInt8], lastResort: Bool)? {
        try await timed("claim_key_package") { try await inner.claimKeyPackage(for: device) }
    }
    func createGroup(_ groupId: [UInt8], verifier: [UInt8]) async throws -> Bool {
        try await timed("create_group") { try await inner.createGroup(groupId, verifier: verifier) }
    }
    func group(_ groupId: [UInt8]) async throws -> StoredGroup? {
        try await timed("group") { try await inner.group(groupId) }
    }
    func storeGroupMessage(_ write: GroupMessageWrite) async throws -> GroupWriteResult {
        try await timed("store_group_message") { try await inner.storeGroupMessage(write) }
    }
    func groupInfo(_ groupId: [UInt8]) async throws -> StoredGroupInfo? {
        try await timed("group_info") { try await inner.groupInfo(groupId) }
    }
}

/// What the metrics sampler reads from a storage now and then: the depth of every non-empty mailbox, and
/// how many devices that uploaded prekeys hold fewer one-time prekeys of a kind than `watermark`.
protocol MetricsCensus: Sendable {
    func mailboxDepths() async throws -> [Int]
    func devicesLowOnPreKeys(watermark: Int) async throws -> Int
}
