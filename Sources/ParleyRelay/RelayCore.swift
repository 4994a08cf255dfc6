import Foundation
import Logging
import NIOConcurrencyHelpers
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// The relay's behaviour, independent of HTTP: the routes decode a request, call one method here and
/// encode its result. Every method either completes or throws a `RelayError` having changed nothing.
public struct RelayCore: Sendable {
    public let configuration: RelayConfiguration
    let storage: any RelayStorage
    let broker: any WakeBroker
    let clock: any WallClock
    /// The free space kept for draining, and the storage faults met.
    let space: StorageSpace
    /// What operators see of the relay's work (`--metrics`); nothing by default.
    public var metrics = RelayMetrics.disabled
    let verifiedLists = VerifiedDeviceLists()
    /// The accounts of tokens this node has seen (`RelayCore+TokenMailbox.swift`).
    let tokenOwners = TokenOwners()

    public init(configuration: RelayConfiguration, storage: any RelayStorage, broker: any WakeBroker,
                clock: any WallClock = SystemWallClock()) {
        self.configuration = configuration
        self.storage = storage
        self.broker = broker
        self.clock = clock
        space = StorageSpace(directory: configuration.dataDirectory, reserve: configuration.minFreeSpaceBytes)
    }

    /// Refuses (507) what would store `bytes` more, or any new data, once free space is under the reserve.
    func requireRoom(for bytes: UInt64 = 0, logger: Logger) async throws {
        try await space.requireRoom(for: bytes, reusable: { try await storage.reusableBytes() }, logger: logger)
    }

    // MARK: Accounts

    func register(_ request: RegisterRequest) async throws -> AccountResponse {
        let address = try parseLocalAddress(request.address)
        let list = try parseDeviceList(request.deviceList.bytes)
        guard list.accountKey.bytes == request.accountKey.bytes else { throw RelayError.badRequest("the device list is not signed by the account key") }
        try checkDevices(of: list)
        // A new account's list is version 1 (PROTOCOL.md §13): one of version 2⁶⁴−1 could never be followed.
        guard list.version == 1 else { throw RelayError.badRequest("a new account's device list has version 1, not \(list.version)") }
        guard try await storage.createAccount(address: address, accountKey: list.accountKey.bytes, deviceList: list.encoded) else {
            throw RelayError.conflict("the name \(address) is taken")
        }
        return AccountResponse(address: address, accountKey: Base64Bytes(list.accountKey.bytes), deviceList: Base64Bytes(list.encoded))
    }

    func account(_ rawAddress: String) async throws -> AccountResponse {
        let address = try parseLocalAddress(rawAddress)
        guard let account = try await verifiedAccount(address) else { throw RelayError.notFound("no account \(address)") }
        let keyChange = try await storage.accountKeyChange(of: address)
        return AccountResponse(address: address, accountKey: Base64Bytes(account.accountKey), deviceList: Base64Bytes(account.deviceList.encoded),
                               keyChange: keyChange.map(Base64Bytes.init))
    }

    /// Publishes a newer device list signed by the account's key (the only authority over its devices).
    /// `admit` runs once the update has verified, just before it is stored (the route's rate limit).
    func updateDeviceList(_ update: DeviceListUpdate, for rawAddress: String, admit: () async throws -> Void = {}) async throws {
        let address = try parseLocalAddress(rawAddress)
        let list = try parseDeviceList(update.deviceList.bytes)
        guard let current = try await verifiedAccount(address) else { throw RelayError.notFound("no account \(address)") }
        guard list.accountKey.bytes == current.accountKey else { throw RelayError.forbidden("the list is not signed by this account's key") }
        guard list.version > current.deviceList.version else {
            throw RelayError.conflict("device list version \(list.version) is not newer than \(current.deviceList.version)")
        }
        try checkDevices(of: list)
        try await admit()
        // A device that left the list, or whose id now has a new key (a new device: nothing of the old
        // one may reach it), loses its tokens, prekeys and queued mail with the change, and its push
        // connection ends.
        let revoked = current.deviceList.devices.filter { old in list.device(old.deviceId)?.identityKey != old.identityKey }
        guard try await storage.replaceDeviceList(address: address, replacing: current.storedList, with: list.encoded,
                                                  wiping: revoked.map(\.deviceId)) else {
            throw RelayError.conflict("the device list of \(address) changed meanwhile; fetch it and try again")
        }
        let added = list.devices.filter { new in current.deviceList.device(new.deviceId)?.identityKey != new.identityKey }
        metrics.deviceListChanged(added: added.count, removed: revoked.count)
        await broker.revoke(revoked.map { DeviceAddress(address: address, deviceId: $0.deviceId) })
    }

    // MARK: Authentication

    func challenge(_ request: ChallengeRequest) async throws -> ChallengeResponse {
        let address = try parseLocalAddress(request.address)
        guard let account = try await verifiedAccount(address), account.deviceList.device(request.deviceId) != nil else {
            throw RelayError.notFound("no device \(request.deviceId) of \(address)")
        }
        let challenge = SystemRandom().bytes(32)
        let expiresAt = clock.nowMilliseconds() + configuration.challengeLifetime
        try await storage.storeChallenge(challenge, address: address, deviceId: request.deviceId, expiresAt: expiresAt)
        return ChallengeResponse(challenge: Base64Bytes(challenge), expiresAt: expiresAt)
    }

    /// Exchanges a signed challenge for a session token. The challenge is consumed whatever the outcome,
    /// so a replayed or guessed challenge never works twice. Tokens are stored as SHA-256 hashes: they
    /// are random and long, so a fast hash suffices.
    func session(_ request: SessionRequest) async throws -> SessionResponse {
        let address = try parseLocalAddress(request.address)
        let now = clock.nowMilliseconds()
        guard let owner = try await storage.takeChallenge(request.challenge.bytes, now: now),
              owner == DeviceAddress(address: address, deviceId: request.deviceId) else {
            throw RelayError.unauthorized("unknown, expired or already used challenge")
        }
        guard let account = try await verifiedAccount(address), let device = account.deviceList.device(request.deviceId),
              device.identityKey.isValidSignature(request.signature.bytes,
                                                  for: authenticationMessage(challenge: request.challenge.bytes, relayName: configuration.name)) else {
            throw RelayError.unauthorized("the signature does not verify with the device key")
        }
        var token = SystemRandom().bytes(32)
        defer { wipe(&token) }
        let text = Hex.encode(token)
        let expiresAt = now + configuration.tokenLifetime
        try await storage.storeToken(hash: SHA256.hash(Array(text.utf8)), device: owner, expiresAt: expiresAt)
        return SessionResponse(token: text, expiresAt: expiresAt)
    }

    func authenticate(token: String) async throws -> DeviceAddress {
        let hash = SHA256.hash(Array(token.utf8))
        guard let device = try await storage.device(forTokenHash: hash, now: clock.nowMilliseconds()) else {
            throw RelayError.unauthorized("invalid or expired token")
        }
        tokenOwners.remember(device.address, forTokenHash: hash)
        return device
    }

    // MARK: Prekeys

    func uploadPreKeys(_ upload: PreKeyUpload, by device: DeviceAddress) async throws {
        guard let account = try await verifiedAccount(device.address), let entry = account.deviceList.device(device.deviceId) else {
            throw RelayError.forbidden("device not in the account's list")
        }
        guard upload.oneTimePreKeys.count <= 100, upload.oneTimePQPreKeys.count <= 100 else {
            throw RelayError.badRequest("at most 100 keys of each kind per upload")
        }
        func signed(_ e: SignedPreKeyEntry?, kemKey: Bool) throws -> StoredSignedKey? {
            guard let e else { return nil }
            let encoded: [UInt8]
            if kemKey {
                guard (try? MLKEM1024KEM.PublicKey(e.key.bytes)) != nil else { throw RelayError.badRequest("prekey \(e.id) is not an ML-KEM-1024 key") }
                encoded = [KeyEncoding.mlkem1024] + e.key.bytes
            } else {
                guard e.key.bytes.count == 32 else { throw RelayError.badRequest("prekey \(e.id) is not an X25519 key") }
                encoded = [KeyEncoding.x25519] + e.key.bytes
            }
            guard entry.identityKey.isValidSignature(e.signature.bytes, for: encoded) else {
                throw RelayError.badRequest("the signature of prekey \(e.id) does not verify")
            }
            return StoredSignedKey(id: e.id, key: e.key.bytes, signature: e.signature.bytes)
        }
        let oneTime = try upload.oneTimePreKeys.map { e -> StoredSignedKey in
            guard e.key.bytes.count == 32, e.id != 0 else { throw RelayError.badRequest("one-time prekey \(e.id) is malformed") }
            return StoredSignedKey(id: e.id, key: e.key.bytes, signature: [])
        }
        let pq = try upload.oneTimePQPreKeys.map { e -> StoredSignedKey in
            guard e.id != 0 else { throw RelayError.badRequest("one-time prekey 0 is malformed (id 0 means none)") }
            return try signed(e, kemKey: true)!
        }
        // A device holds a bounded number (clients keep about 100 and refill below 10): uploads cannot grow
        // the relay's database without end.
        guard try await storage.storePreKeys(for: device, signed: try signed(upload.signedPreKey, kemKey: false),
                                             lastResort: try signed(upload.lastResortPQPreKey, kemKey: true), oneTime: oneTime, oneTimePQ: pq,
                                             limit: configuration.maxStoredOneTimePreKeys) else {
            throw RelayError.badRequest("a device holds at most \(configuration.maxStoredOneTimePreKeys) one-time prekeys of each kind")
        }
    }

    func preKeyCount(for device: DeviceAddress) async throws -> PreKeyCount {
        let counts = try await storage.preKeyCounts(for: device)
        return PreKeyCount(oneTimePreKeys: counts.oneTime, oneTimePQPreKeys: counts.oneTimePQ, low: preKeysLow(counts.oneTime, counts.oneTimePQ))
    }

    /// The owner should refill when either kind of one-time prekey runs below the watermark.
    private func preKeysLow(_ oneTime: Int, _ oneTimePQ: Int) -> Bool {
        min(oneTime, oneTimePQ) < configuration.preKeyLowWatermark
    }

    /// Assembles a bundle, consuming one one-time key of each kind (falling back to the last-resort key);
    /// with `takingOneTimeKeys` false, the signed and last-resort prekeys only, the stock left as it is.
    func bundle(address rawAddress: String, deviceId: UInt32, takingOneTimeKeys: Bool) async throws -> BundleResponse {
        let address = try parseLocalAddress(rawAddress)
        guard let account = try await verifiedAccount(address), let entry = account.deviceList.device(deviceId) else {
            throw RelayError.notFound("no device \(deviceId) of \(address)")
        }
        let device = DeviceAddress(address: address, deviceId: deviceId)
        guard let keys = try await storage.takeBundleKeys(for: device, oneTime: takingOneTimeKeys) else {
            throw RelayError.notFound("device \(deviceId) of \(address) has not uploaded prekeys")
        }
        // Running low is reported to the owner at once, not at its next receive: the push connection wakes
        // it, and the mailbox page it then fetches says the prekeys are low, so it refills (even when no
        // message came, as when a stranger only fetches bundles).
        if takingOneTimeKeys { metrics.bundleTaken(oneTime: keys.oneTime != nil, oneTimePQ: keys.oneTimePQ != nil) }
        let left = try await storage.preKeyCounts(for: device)
        if preKeysLow(left.oneTime, left.oneTimePQ) { await broker.wake([device]) }
        do {
            let pq = keys.oneTimePQ ?? keys.lastResort
            let bundle = PreKeyBundle(
                identityKey: entry.identityKey, deviceId: deviceId,
                signedPreKeyId: keys.signed.id, signedPreKey: try X25519.PublicKey(keys.signed.key), signedPreKeySignature: keys.signed.signature,
                pqPreKeyId: pq.id, pqKind: keys.oneTimePQ == nil ? .lastResort : .oneTime, pqPreKey: try MLKEM1024KEM.PublicKey(pq.key),
                pqPreKeySignature: pq.signature,
                oneTimePreKeyId: keys.oneTime?.id ?? 0, oneTimePreKey: try keys.oneTime.map { try X25519.PublicKey($0.key) })
            return BundleResponse(bundle: Base64Bytes(bundle.encoded))
        } catch {
            throw RelayError.unavailable("stored prekeys of \(address)#\(deviceId) are unusable")
        }
    }

    // MARK: Delivery access

    /// Stores the verifier of the account's delivery access key (PROTOCOL.md §13.1); any device of the
    /// account may set it.
    func setDeliveryAccess(_ update: DeliveryAccessUpdate, by device: DeviceAddress) async throws {
        guard update.verifier.bytes.count == HMACSHA256.outputLength else {
            throw RelayError.badRequest("a verifier is \(HMACSHA256.outputLength) bytes")
        }
        try await storage.setDeliveryAccessVerifier(update.verifier.bytes, for: device.address)
    }

    /// On what grounds a send to `address` is taken (PROTOCOL.md §13.1).
    enum SendAdmission: Equatable {
        /// Copies to the sender's own other devices, with its token.
        case ownAccount
        /// Sealed, with the recipient's delivery access key: only its contacts hold it.
        case accessKey
        /// With the token of a device of another account on this relay, which is charged for it.
        case authenticated(sender: String)
        /// Neither: charged to the recipient's small budget for strangers.
        case stranger
        /// To an account without a verifier (made by a version-1 client): as in version 1, unauthenticated.
        case unrestricted
    }

    /// A token decides first (the sender revealed itself anyway); then the access key, which must match the
    /// stored verifier (compared in constant time) or the send is refused.
    func admission(to address: String, sender: DeviceAddress?, accessKey: [UInt8]?) async throws -> SendAdmission {
        try await admit(to: address, sender: sender, accessKey: accessKey).admission
    }

    /// The admission, and the account as read for it (when a token did not decide), which `send` then
    /// checks the send against first: one read of the account for both.
    func admit(to address: String, sender: DeviceAddress?, accessKey: [UInt8]?) async throws -> (admission: SendAdmission, account: StoredAccount?) {
        if let sender { return (sender.address == address ? .ownAccount : .authenticated(sender: sender.address), nil) }
        let read = try await storage.accountForDelivery(address)
        let verifier = read?.verifier
        if let accessKey {
            guard let verifier, accessKey.count == DeliveryAccess.keyLength,
                  constantTimeEquals(DeliveryAccess.verifier(of: accessKey), verifier) else {
                throw RelayError.unauthorized("the delivery access key of \(address) does not match")
            }
            return (.accessKey, read?.account)
        }
        return (verifier == nil ? .unrestricted : .stranger, read?.account)
    }

    // MARK: Messages

    /// `sender`: the authenticated device when the request carried a token. For copies to the sender's own
    /// other devices, the sending device is then not counted as missing.
    /// A request may carry several messages to the account: every device it names then appears equally
    /// often, and its envelopes are queued in request order. All are stored or none.
    /// `read`: the account as the admission read it, checked against first.
    func send(_ request: SendRequest, to rawAddress: String, sender: DeviceAddress? = nil, read: StoredAccount? = nil) async throws {
        let address = try parseLocalAddress(rawAddress)
        guard !request.messages.isEmpty else { throw RelayError.badRequest("no messages") }
        for message in request.messages {
            guard !message.envelope.bytes.isEmpty else { throw RelayError.badRequest("an envelope is empty") }
            guard message.envelope.bytes.count <= configuration.maxEnvelopeBytes else {
                throw RelayError.payloadTooLarge("an envelope exceeds \(configuration.maxEnvelopeBytes) bytes")
            }
        }
        _ = try Self.messageCount(of: request, limit: configuration.maxMessagesPerSend)
        let sendingDevice = sender?.address == address ? sender?.deviceId : nil
        // The list is read, the send checked against it, and the envelopes stored only if the list is still
        // that one; a list that changed in between (a device added or revoked) is read and checked again.
        var read = read
        for _ in 0..<Self.listChangeRetries {
            let found: (accountKey: [UInt8], deviceList: SignedDeviceList, storedList: [UInt8])? =
                if let first = read { try verified(first, of: address) } else { try await verifiedAccount(address) }
            read = nil
            guard let account = found else { throw RelayError.notFound("no account \(address)") }
            try Self.checkRecipients(of: request, against: account.deviceList, sendingDevice: sendingDevice)
            let now = clock.nowMilliseconds()
            let result = try await storage.enqueue(request.messages.map { ($0.deviceId, $0.envelope.bytes) }, for: address,
                                                   ifDeviceList: account.storedList, now: now, expiresAt: now + configuration.messageTTL,
                                                   mailboxLimit: configuration.maxMailboxMessages)
            switch result {
            case .stored:
                if !storage.wakesRecipientsOnEnqueue {
                    await broker.wake(request.messages.map { DeviceAddress(address: address, deviceId: $0.deviceId) })
                }
                return
            case .deviceListChanged:
                continue
            case .mailboxFull(let deviceId):
                throw RelayError.mailboxFull("the mailbox of \(address)#\(deviceId) is full")
            case .unknownAccount:
                throw RelayError.notFound("no account \(address)")
            }
        }
        throw RelayError.conflict("the device list of \(address) keeps changing; try again")
    }

    static let listChangeRetries = 4

    /// A send names every device of the list (but the sending device itself, for copies to its own
    /// account) with the key the list has for it, and no other device.
    static func checkRecipients(of request: SendRequest, against list: SignedDeviceList, sendingDevice: UInt32?) throws {
        var current: [UInt32: [UInt8]] = [:]
        for device in list.devices { current[device.deviceId] = device.identityKey.bytes }
        let requested = Set(request.messages.map(\.deviceId))
        let missing = current.keys.filter { !requested.contains($0) && $0 != sendingDevice }.sorted()
        let extra = requested.filter { current[$0] == nil }.sorted()
        // A device named once per message of a send is stale once, not once per message.
        let stale = Set(request.messages.filter { message in current[message.deviceId].map { $0 != message.deviceKey.bytes } ?? false }
            .map(\.deviceId)).sorted()
        guard missing.isEmpty, extra.isEmpty, stale.isEmpty else {
            throw RelayError.deviceMismatch(missing: missing, extra: extra, stale: stale)
        }
    }

    /// How many messages `request` carries: the number of envelopes each named device gets, which must be
    /// the same for all of them (a message goes to every device) and at most `limit`.
    static func messageCount(of request: SendRequest, limit: Int) throws -> Int {
        var perDevice: [UInt32: Int] = [:]
        for message in request.messages { perDevice[message.deviceId, default: 0] += 1 }
        let counts = Set(perDevice.values)
        guard counts.count == 1, let count = counts.first else {
            throw RelayError.badRequest("every device needs the same number of envelopes (one per message)")
        }
        guard count <= limit else { throw RelayError.badRequest("at most \(limit) messages per send") }
        return count
    }

    // MARK: Provisioning

    func createProvisioning() async throws -> ProvisioningSlot {
        let id = Hex.encode(SystemRandom().bytes(16))
        let expiresAt = clock.nowMilliseconds() + configuration.provisioningTTL
        try await storage.createProvisioning(id: id, expiresAt: expiresAt)
        return ProvisioningSlot(id: id, expiresAt: expiresAt)
    }

    /// Only a device of an account on this relay may fill a slot (the message itself is sealed to the new
    /// device's key, so this only keeps strangers from using the relay as a drop box).
    func fillProvisioning(id: String, with message: ProvisioningMessage, by device: DeviceAddress) async throws {
        try Self.checkProvisioningId(id)
        guard !message.message.bytes.isEmpty else { throw RelayError.badRequest("empty provisioning message") }
        guard message.message.bytes.count <= configuration.maxProvisioningBytes else {
            throw RelayError.payloadTooLarge("provisioning messages are limited to \(configuration.maxProvisioningBytes) bytes")
        }
        guard try await storage.fillProvisioning(id: id, message: message.message.bytes, now: clock.nowMilliseconds()) else {
            throw RelayError.notFound("no open provisioning slot \(id)")
        }
    }

    /// The message once it is there (and the slot is gone), nil while the slot waits.
    func takeProvisioning(id: String) async throws -> ProvisioningMessage? {
        try Self.checkProvisioningId(id)
        switch try await storage.takeProvisioning(id: id, now: clock.nowMilliseconds()) {
        case .unknown: throw RelayError.notFound("no provisioning slot \(id)")
        case .waiting: return nil
        case .filled(let bytes): return ProvisioningMessage(message: Base64Bytes(bytes))
        }
    }

    private static func checkProvisioningId(_ id: String) throws {
        guard id.count == 32, id.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw RelayError.notFound("no provisioning slot \(id)") }
    }

    /// The oldest queued envelopes, those with ids above `after` when given.
    func fetch(for device: DeviceAddress, limit: Int, after: Int64 = 0) async throws -> FetchResponse {
        response(try await storage.fetch(for: device, now: clock.nowMilliseconds(), limit: Self.pageSize(limit), after: after))
    }

    /// Deletes the acknowledged envelopes; with `fetch` (a page size), also returns the next page (ids above
    /// `after`).
    func acknowledge(_ request: AckRequest, for device: DeviceAddress, fetch: Int? = nil, after: Int64 = 0) async throws -> FetchResponse? {
        let ids = try Self.messageIds(of: request)
        guard let fetch else {
            metrics.envelopesDelivered.increment(by: try await storage.acknowledge(ids, for: device))
            return nil
        }
        let page = try await storage.acknowledge(ids, for: device, thenFetch: Self.pageSize(fetch), after: after, now: clock.nowMilliseconds())
        metrics.envelopesDelivered.increment(by: page.acknowledged)
        return response(page)
    }

    static func messageIds(of request: AckRequest) throws -> [Int64] {
        guard request.ids.count <= 1000 else { throw RelayError.badRequest("at most 1000 ids") }
        return try request.ids.map { text -> Int64 in
            guard let id = Self.canonicalNumber(text).flatMap({ Int64($0) }), id > 0 else { throw RelayError.badRequest("'\(text)' is not a message id") }
            return id
        }
    }

    /// `text` when it is a number written the one way the API writes numbers (digits, no sign, no leading
    /// zero), else nil: "+1" and "01" are not ids, though Swift's integer parsing takes them.
    static func canonicalNumber(_ text: String) -> String? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), text == "0" || !text.hasPrefix("0") else { return nil }
        return text
    }

    /// Page sizes outside 1–500 are clamped.
    static func pageSize(_ requested: Int) -> Int { max(1, min(requested, 500)) }

    /// The `after` query parameter: absent means 0 (the whole mailbox); anything but a message id or 0 is
    /// refused.
    static func afterParameter(_ text: String?) throws -> Int64 {
        guard let text else { return 0 }
        guard let value = Int64(text), value >= 0 else { throw RelayError.badRequest("'after' must be a message id (or 0)") }
        return value
    }

    func response(_ page: MailboxPage) -> FetchResponse {
        FetchResponse(messages: page.messages.map { QueuedMessage(id: String($0.id), envelope: Base64Bytes($0.envelope), receivedAt: $0.receivedAt) },
                      more: page.more,
                      preKeysLow: preKeysLow(page.oneTimePreKeys, page.oneTimePQPreKeys))
    }

    // MARK: Helpers

    /// Accepts `name@<this relay>` only.
    func parseLocalAddress(_ text: String) throws -> String {
        let address: AccountAddress
        do { address = try AccountAddress(text) } catch { throw RelayError.badRequest(error.description) }
        guard address.relay == configuration.name.lowercased() else {
            throw RelayError.notFound("this relay is \(configuration.name); it does not serve \(address.relay)")
        }
        return address.description
    }

    /// What every device list must hold, at registration and in each update: 1 to `maxDevices` devices,
    /// ids from 1 (an empty list would leave the name neither usable nor free).
    func checkDevices(of list: SignedDeviceList) throws {
        guard !list.devices.isEmpty else { throw RelayError.badRequest("the device list is empty") }
        guard list.devices.count <= configuration.maxDevices else { throw RelayError.badRequest("at most \(configuration.maxDevices) devices") }
        guard list.devices.allSatisfy({ $0.deviceId > 0 }) else { throw RelayError.badRequest("device ids start at 1") }
    }

    /// The account with its device list verified (signature and form) as it comes out of the storage: a
    /// list the storage holds is trusted no more than one a client sends. Lists already verified are
    /// remembered by their bytes, so a send does not pay a signature check each time.
    /// `storedList` is the list's bytes as stored, what conditional writes compare with.
    func verifiedAccount(_ address: String) async throws -> (accountKey: [UInt8], deviceList: SignedDeviceList, storedList: [UInt8])? {
        guard let stored = try await storage.account(address) else { return nil }
        return try verified(stored, of: address)
    }

    func verified(_ stored: StoredAccount, of address: String) throws -> (accountKey: [UInt8], deviceList: SignedDeviceList, storedList: [UInt8]) {
        let list: SignedDeviceList
        if let known = verifiedLists.list(for: stored.deviceList) {
            list = known
        } else {
            do { list = try SignedDeviceList(verifying: stored.deviceList) } catch {
                throw RelayError.unavailable("the stored device list of \(address) does not verify")
            }
            verifiedLists.remember(list, as: stored.deviceList)
        }
        guard list.accountKey.bytes == stored.accountKey else { throw RelayError.unavailable("the stored device list of \(address) is not signed by its account key") }
        return (stored.accountKey, list, stored.deviceList)
    }

    func parseDeviceList(_ bytes: [UInt8]) throws -> SignedDeviceList {
        do { return try SignedDeviceList(verifying: bytes) } catch {
            throw RelayError.badRequest("invalid device list: \(error)")
        }
    }
}

/// Device lists whose signatures verified, by their exact bytes (a bounded set, emptied when full).
final class VerifiedDeviceLists: Sendable {
    static let capacity = 4096
    private let lists = NIOLockedValueBox<[[UInt8]: SignedDeviceList]>([:])

    func list(for bytes: [UInt8]) -> SignedDeviceList? {
        lists.withLockedValue { $0[bytes] }
    }

    func remember(_ list: SignedDeviceList, as bytes: [UInt8]) {
        lists.withLockedValue { lists in
            if lists.count >= Self.capacity { lists.removeAll(keepingCapacity: true) }
            lists[bytes] = list
        }
    }
}
