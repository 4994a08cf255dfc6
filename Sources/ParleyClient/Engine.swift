import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Something a front end shows: a message arrived or changed state, someone is typing, the connection
/// changed, a message could not be read.
public enum EngineEvent: Sendable, Equatable {
    case message(MessageRecord)
    /// A reaction, edit or delete (by a contact, or sent from another device of this account) changed this
    /// message: the record as stored now.
    case messageChanged(MessageRecord, MessageAction)
    /// `from` says it delivered or read these messages of this account in `conversation`.
    case receipt(in: ConversationId, from: AccountAddress, read: Bool, messageIds: [[UInt8]])
    /// `from` started or stopped typing in `conversation`.
    case typing(in: ConversationId, from: AccountAddress, started: Bool)
    case undecryptable(from: AccountAddress?, reason: String)
    /// A message that names `address` as its sender, held unopened in the mailbox because the account key
    /// of `address` could not be fetched from its relay yet (a certificate alone proves nothing); it is
    /// tried again by the next receive.
    case unverifiedSender(address: AccountAddress)
    /// `count` envelopes nobody this device knows could have sent were discarded unread (`total` so far):
    /// counted, never filed into a conversation.
    case discarded(count: Int, total: Int)
    case identityChanged(address: AccountAddress, trust: TrustState)
    case devicesChanged(address: AccountAddress, added: [UInt32], removed: [UInt32], suspicious: Bool)
    case connection(PushListener.State)
    /// Another device of this account read these messages of `conversation`.
    case readElsewhere(conversation: ConversationId, messageIds: [[UInt8]])
    /// The push connection's drain of the mailbox failed for a reason the user should see (this device's
    /// store is full, the relay refused): one line. What was not stored stays on the relay.
    case receiveFailed(String)
    /// A message from `address`, not a contact, was dropped unread: the administrator's policy does not
    /// admit it as a contact (`reason`, parley-policy(5) `allowed_relays`). Nothing was stored.
    case refusedByPolicy(address: AccountAddress, reason: String)
    /// The disappearing-message timer of `conversation` changed (seconds; nil: off), set by `by` (this
    /// account: on this or another of its devices).
    case disappearingTimer(in: ConversationId, seconds: UInt32?, by: AccountAddress)
    /// These messages of `conversation` expired (their timer, or retention) and were deleted.
    case expired(in: ConversationId, messageIds: [[UInt8]])
    /// Group `id` changed (members, name, or this device's membership); its notice, if any, came as a
    /// `.message` just before.
    case groupChanged(GroupId, GroupChange)
}

/// Whether an account may become a contact — the administrator's `allowed_relays` (parley-policy(5)):
/// nil admits it, else the reason it is refused. Applied to a stranger who writes first, before anything
/// of theirs is decrypted or stored.
public typealias ContactAdmission = @Sendable (AccountAddress) -> String?

/// The client engine shared by every front end: account creation, contacts, sending through the outbox,
/// and the receive path wake → fetch → decrypt → commit → acknowledge. All state lives in the encrypted
/// store; the engine is an actor so that one device's operations never interleave.
public actor Engine {
    /// Front ends ask the engine for what they read (Engine+Reads.swift); only the engine writes the store.
    nonisolated let store: EncryptedStore
    public nonisolated let relay: any RelayTransport
    public internal(set) var account: LocalAccount
    /// `account.address`, parsed once when the engine opens the store.
    public nonisolated let ownAddress: AccountAddress
    var manager: SessionManager
    let clock: any WallClock
    var token: String?
    public let trustPolicy: TrustPolicy
    public nonisolated let admitsContact: ContactAdmission
    private var events: [UUID: AsyncStream<EngineEvent>.Continuation] = [:]
    /// The outbox drain in progress (see `drainOutbox`), and the sends waiting for their batch in it.
    var outboxDrain: Task<Void, any Error>?
    var batchWaiters: [[UInt8]: [CheckedContinuation<MessageRecord?, any Error>]] = [:]
    /// While `runConnection` runs, an outbox the relay could not take (unreachable, out of space, busy) is
    /// tried again after a pause that doubles up to a minute (see `scheduleOutboxRetry`).
    var retriesOutbox = false
    var outboxRetry: Task<Void, Never>?
    var outboxRetryDelay = Engine.firstOutboxRetry
    /// The push connection's drain (see `wake`), and delivery receipts it has yet to send, by sender.
    var wakeDrain: Task<Void, Never>?
    var drainAgain = false
    var pendingReceipts: [AccountAddress: [[UInt8]]] = [:]
    var receiptSender: Task<Void, Never>?
    /// Contents waiting to be encrypted, and whether a task is encrypting (see `encryptQueued`).
    private var sendQueue: [QueuedSend] = []
    private var encrypting = false
    /// The administrator's limits on timers and retention, and the task deleting messages when they are due
    /// (Engine+Disappearing.swift).
    public let expiryLimits: ExpiryLimits
    var expiryTimer: Task<Void, Never>?
    /// Groups and this account's devices (Engine+GroupDevices.swift): a device of the account whose
    /// KeyPackage could not be claimed is claimed again no sooner than `at`; the flags keep the two
    /// clean-ups from running inside themselves (a commit's retry drains the mailbox, which runs them).
    var ownDeviceClaimRetry: [UInt32: (at: UInt64, wait: UInt64)] = [:]
    var addingOwnDevicesToGroups = false
    var leavingGroups: Set<GroupId> = []
    /// Groups where a member asked to leave during the current drain (Engine+GroupLeavers.swift).
    var groupsWithLeavers: Set<GroupId> = []
    var removingUnlistedLeaves = false
    /// The commit of this device posted to each group and not yet answered, as sent (Engine+GroupOwnCopies.swift).
    var groupCommitsInFlight: [GroupId: [UInt8]] = [:]
    /// GroupInfo key requests this drain brought, answered after it (Engine+GroupKeyRequests.swift).
    var groupKeyRequests: [(from: DeviceAddress, group: GroupId)] = []
    /// Groups this device asked other members for their GroupInfo key, and the keys members sent, each
    /// tried for a rejoin after the drain (never stored unless the rejoin it opens succeeds).
    var groupsAwaitingKey: Set<GroupId> = []
    var answeredGroupKeys: [GroupId: [GroupInfoKey]] = [:]
    /// When a failed rejoin may be tried again, per group, and the wait that doubles (Engine+GroupRecovery.swift).
    var groupRejoinRetry: [GroupId: (at: UInt64, wait: UInt64)] = [:]
    /// One commit at a time per group (Engine+GroupCommitTurns.swift).
    var groupCommitTurns: Set<GroupId> = []
    var groupCommitWaiters: [GroupId: [CheckedContinuation<Void, Never>]] = [:]

    /// Opening an engine deletes what fell due while no engine ran (expired messages, and messages past the
    /// retention); a failure there is left to the next sweep rather than stopping the front end.
    public init(store: EncryptedStore, relay: any RelayTransport, clock: any WallClock = SystemWallClock(),
                trustPolicy: TrustPolicy = .onFirstUse, admitting: @escaping ContactAdmission = { _ in nil },
                expiryLimits: ExpiryLimits = ExpiryLimits()) throws {
        guard let account = try store.localAccount() else { throw ClientError.noAccount }
        ownAddress = try account.accountAddress
        self.store = store
        self.relay = relay
        self.clock = clock
        self.account = account
        self.trustPolicy = trustPolicy
        admitsContact = admitting
        self.expiryLimits = expiryLimits
        let now = clock.nowMilliseconds()
        let chosen = (try? store.setting(Self.retentionSetting))?.flatMap { UInt64($0) }
        let retention = expiryLimits.longestRetention.map { min(chosen ?? $0, $0) } ?? chosen
        _ = try? store.deleteExpiredMessages(now: now, receivedBefore: retention.map { now > $0 * 1000 ? now - $0 * 1000 : 0 })
        manager = Self.sessionManager(account: account, store: store, relay: relay, homeRelay: ownAddress.relay, clock: clock,
                                      trustPolicy: trustPolicy)
    }

    /// The session manager of `account` (made again when this device's keys rotate).
    static func sessionManager(account: LocalAccount, store: EncryptedStore, relay: any RelayTransport, homeRelay: String,
                               clock: any WallClock, trustPolicy: TrustPolicy) -> SessionManager {
        SessionManager(account: account, store: store, bundles: RelayBundles(home: relay, homeRelay: homeRelay), clock: clock,
                       newIdentityPolicy: trustPolicy == .never ? .refuse : .trustOnFirstUse)
    }

    // MARK: Account creation

    /// Creates the account on its relay: keys, a signed device list, registration, prekey upload. The
    /// store is written only after the relay accepted the account.
    /// `oneTimePreKeys` of each kind are uploaded (the relay calls a device low below 10, and it then refills
    /// to the default).
    public static func createAccount(_ address: AccountAddress, store: EncryptedStore, relay: any RelayTransport,
                                     clock: any WallClock = SystemWallClock(),
                                     oneTimePreKeys: Int = LocalPreKeys.defaultOneTimeCount) async throws -> Engine {
        if let existing = try store.localAccount() { throw ClientError.accountExists(existing.address) }
        let now = clock.nowMilliseconds()
        let accountKey = Ed25519.KeyPair()
        let device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: now)],
                                         version: 1, accountKey: accountKey)
        let account = LocalAccount(address: address.description, accountKey: accountKey, device: device, deviceList: list,
                                   certificateExpiry: now + LocalAccount.certificateLifetime)
        let preKeys = LocalPreKeys.generate(oneTime: oneTimePreKeys)
        _ = try await relay.register(RegisterRequest(address: address.description, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                     deviceList: Base64Bytes(list.encoded)))
        try store.saveLocalAccount(account, preKeys: preKeys)
        let engine = try Engine(store: store, relay: relay, clock: clock)
        try await engine.uploadPreKeys(preKeys, full: true)
        // A version-1 relay has no such route: the account then takes sealed mail from anyone, as before,
        // and the next receive tries again.
        try? await engine.publishDeliveryAccessKey()
        return engine
    }

    // MARK: Delivery access (PROTOCOL.md §13.1)

    /// Makes the account's delivery access key — on its first device only: the others are given it — and
    /// registers the key's verifier with the relay, which from then on takes sealed envelopes for the
    /// account only with the key (or from a sender that shows its token, or within a small budget).
    func publishDeliveryAccessKey() async throws {
        let key = try store.deliveryAccessKey() ?? DeliveryAccess.newKey()
        let update = DeliveryAccessUpdate(verifier: Base64Bytes(DeliveryAccess.verifier(of: key)))
        try await authorised { try await relay.setDeliveryAccess(update, token: $0) }
        // Kept once the relay has the verifier: a key this device holds is one its contacts can use.
        try store.setDeliveryAccessKey(key)
    }

    /// An account made before delivery access, or restored without its key, makes one when it has a
    /// single device (with several, the key may exist on another device and arrives from it).
    func adoptDeliveryAccess() async throws {
        guard try store.deliveryAccessKey() == nil, account.deviceList.devices.count == 1 else { return }
        try await publishDeliveryAccessKey()
    }

    /// `content` carrying this account's delivery access key when `peer` has not been given it yet; the
    /// key, to remember as given once the content is on its way. A content that fills its envelope has no
    /// room for the key's 32 bytes (`checkFits` and `textLimit` do not reserve them): the key then waits
    /// for the next content to the peer, and the message still goes.
    private func sharingDeliveryAccess(_ content: Content, with peer: AccountAddress) throws -> (content: Content, key: [UInt8]?) {
        guard peer != ownAddress, content.deliveryAccess == nil, let key = try store.deliveryAccessKey(),
              try store.deliveryAccessKeyShared(with: peer) != key else { return (content, nil) }
        let carrying = content.carrying(deliveryAccess: key)
        let largest = EnvelopeSize.largestContent(within: Self.envelopeLimit, senderAddressBytes: account.address.utf8.count)
        guard carrying.encoded.count <= largest else { return (content, nil) }
        return (carrying, key)
    }

    /// Keys that arrived with contents: a contact's is kept for sealed sending to it; one from this
    /// account's own other device is adopted by a device that has none yet (a linked one).
    func learnDeliveryAccess(_ keys: [(address: AccountAddress, key: [UInt8])]) throws {
        for (address, key) in keys {
            if address == ownAddress {
                if try store.deliveryAccessKey() == nil { try store.setDeliveryAccessKey(key) }
            } else if try store.deliveryAccessKey(of: address) != key {
                try store.setDeliveryAccessKey(key, of: address)
            }
        }
    }

    // MARK: Authentication

    /// A bearer token for this device, from a signed challenge.
    public func sessionToken() async throws -> String {
        if let token { return token }
        let challenge: ChallengeResponse
        do {
            challenge = try await relay.challenge(ChallengeRequest(address: account.address, deviceId: account.device.deviceId))
        } catch ClientError.relay(status: 404, _, _) {
            // The relay's list of this account no longer names this device: another device revoked it.
            throw ClientError.deviceRevoked(account.deviceAddress)
        }
        let signature = account.device.keyPair.sign(authenticationMessage(challenge: challenge.challenge.bytes, relayName: ownAddress.relay))
        let session: SessionResponse
        do {
            session = try await relay.session(SessionRequest(address: account.address, deviceId: account.device.deviceId,
                                                             challenge: challenge.challenge, signature: Base64Bytes(signature)))
        } catch ClientError.relay(status: 401, let code, let message) {
            // Refused though signed a moment ago: either a passing condition (the challenge expired), a key
            // rotation of this device whose list did not reach the relay, or this device's key is no longer
            // the account's (it was restored from a backup elsewhere, which gave the device a new key, or
            // revoked). The account's signed device list tells which.
            if try await finishInterruptedRotation() { return try await sessionToken() }
            if try await !accountListsThisDevice() {
                throw ClientError.deviceRevoked(account.deviceAddress)
            }
            throw ClientError.relay(status: 401, code: code, message: message)
        }
        token = session.token
        return session.token
    }

    /// Whether the account's device list on the relay (signed by the account key) still holds this device
    /// with this device's key.
    private func accountListsThisDevice() async throws -> Bool {
        let list = try await publishedDeviceList(of: ownAddress)
        return list.device(account.device.deviceId)?.identityKey == account.device.publicKey
    }

    /// The device list `address`'s relay publishes, checked: signed by the account key the relay names.
    func publishedDeviceList(of address: AccountAddress) async throws -> SignedDeviceList {
        let response = try await peerRelay(for: address).account(address.description)
        let list = try SignedDeviceList(verifying: response.deviceList.bytes)
        guard list.accountKey.bytes == response.accountKey.bytes else { throw ClientError.malformedResponse("device list not signed by the account key") }
        return list
    }

    /// Runs `body` with a token, renewing it once if the relay says it expired.
    func authorised<R>(_ body: (String) async throws -> R) async throws -> R {
        do { return try await body(try await sessionToken()) } catch ClientError.relay(status: 401, _, _) {
            token = nil
            return try await body(try await sessionToken())
        }
    }

    // MARK: Prekeys

    func uploadPreKeys(_ keys: LocalPreKeys, full: Bool, oneTimeIds: Set<UInt32>? = nil, pqIds: Set<UInt32>? = nil) async throws {
        let identity = account.device
        func signed(_ id: UInt32, _ encoded: [UInt8], _ raw: [UInt8]) -> SignedPreKeyEntry {
            SignedPreKeyEntry(id: id, key: Base64Bytes(raw), signature: Base64Bytes(identity.keyPair.sign(encoded)))
        }
        let spk = keys.signedPreKeys[keys.currentSignedPreKeyId]!.publicKey
        let lastResort = keys.lastResortPQPreKeys[keys.currentLastResortPQPreKeyId]!.publicKey
        let oneTime = keys.oneTimePreKeys.filter { oneTimeIds?.contains($0.key) ?? true }.sorted { $0.key < $1.key }
            .map { OneTimePreKeyEntry(id: $0.key, key: Base64Bytes($0.value.publicKey.bytes)) }
        let pq = keys.oneTimePQPreKeys.filter { pqIds?.contains($0.key) ?? true }.sorted { $0.key < $1.key }
            .map { signed($0.key, KeyEncoding.encode($0.value.publicKey), $0.value.publicKey.bytes) }
        let upload = PreKeyUpload(
            signedPreKey: full ? signed(keys.currentSignedPreKeyId, KeyEncoding.encode(spk), spk.bytes) : nil,
            lastResortPQPreKey: full ? signed(keys.currentLastResortPQPreKeyId, KeyEncoding.encode(lastResort), lastResort.bytes) : nil,
            oneTimePreKeys: oneTime, oneTimePQPreKeys: pq)
        try await authorised { try await relay.uploadPreKeys(upload, token: $0) }
    }

    /// Tops the relay's one-time prekeys back up to the default count.
    public func refillPreKeys() async throws {
        let count = try await authorised { try await relay.preKeyCount(token: $0) }
        let wantEC = max(0, LocalPreKeys.defaultOneTimeCount - count.oneTimePreKeys)
        let wantPQ = max(0, LocalPreKeys.defaultOneTimeCount - count.oneTimePQPreKeys)
        guard wantEC > 0 || wantPQ > 0 else { return }
        var keys = try store.preKeys()
        let ec = Set(keys.generateOneTimePreKeys(wantEC))
        let pq = Set(keys.generateOneTimePQPreKeys(wantPQ))
        try store.saveLocalAccount(account, preKeys: keys)
        // None at all on the relay: perhaps the first upload never arrived (an init that failed after the
        // account was registered), so the signed and last-resort prekeys go again too (replacing is harmless).
        let nothingThere = count.oneTimePreKeys == 0 && count.oneTimePQPreKeys == 0
        try await uploadPreKeys(keys, full: nothingThere, oneTimeIds: ec, pqIds: pq)
    }

    /// After a restore (new device key, device list re-signed with a higher version): publishes the list,
    /// which also makes the relay drop the old key's tokens, prekeys and mail, then uploads fresh prekeys.
    public func publishRestoredDevice() async throws {
        try await relay.publishDeviceList(DeviceListUpdate(deviceList: Base64Bytes(account.deviceList.encoded)), address: account.address)
        token = nil
        try await uploadPreKeys(try store.preKeys(), full: true)
    }

    // MARK: Contacts

    /// Looks `address` up on its relay and remembers its account key and device list (trust on first
    /// use; the verification issue adds the explicit trust decisions).
    @discardableResult
    public func addContact(_ address: AccountAddress) async throws -> Contact {
        let list = try await publishedDeviceList(of: address)
        if try store.contact(address) != nil {
            try await learn(list, for: address)
            return try store.contact(address)!
        }
        let contact = Contact(address: address, account: KnownAccount(accountKey: list.accountKey, deviceList: list),
                              trust: trustPolicy == .never ? .untrusted : .unverified)
        try store.saveContact(contact)
        return contact
    }

    // MARK: Sending

    /// Encrypts `text` for every device of `peer` and this account's other devices, commits it to history
    /// and the outbox in one transaction, then tries to deliver. Returns the message as stored (pending if
    /// the relay could not be reached: the outbox keeps it for the next attempt).
    @discardableResult
    public func send(text: String, to peer: AccountAddress, replyTo: [UInt8]? = nil) async throws -> MessageRecord {
        try await send(.message(text: text, replyTo: replyTo, attachment: nil), to: peer)
    }

    /// Sends a text-like body (a plain text when it has neither a reply nor an attachment) and returns it
    /// as stored.
    func send(_ body: Content.Body, to peer: AccountAddress) async throws -> MessageRecord {
        try refuseIfBlocked(peer)
        var body = body
        if case .message(let text, nil, nil) = body { body = .text(text) }
        let conversation = ConversationId.direct(peer)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation, body: body,
                              expireTimer: outgoingTimer(conversation))
        try checkFits(content)
        defer { if content.expireTimer != nil { rescheduleExpiry() } }
        let stored: MessageRecord?
        do {
            stored = try await send(content, to: peer)
        } catch {
            try keepUnsent(content, in: conversation, after: error)
            throw error
        }
        if let stored { return stored }
        if peer == ownAddress {
            // A note to self: stored, and posted to this account's other devices if it has any (each files it
            // in its own conversation with this account); nobody else is waiting for it, so it is sent.
            _ = try store.advanceState(ofMessagesSentBy: ownAddress, ids: [content.messageId], to: .sent)
        }
        return try store.message(sentBy: ownAddress, clientMessageId: content.messageId) ?? record(of: content, in: conversation, state: .pending)
    }

    /// `content` as this device records a message it wrote.
    private func record(of content: Content, in conversation: ConversationId, state: DeliveryState) -> MessageRecord {
        var replyTo: [UInt8]?, attachment: AttachmentPointer?
        if case .message(_, let quoted, let pointer) = content.body { (replyTo, attachment) = (quoted, pointer) }
        return MessageRecord(conversation: conversation, direction: .outgoing, sender: account.deviceAddress,
                             clientMessageId: content.messageId, sentAt: content.sentAt, receivedAt: content.sentAt,
                             text: content.body.displayText ?? "", state: state, replyTo: replyTo, attachment: attachment,
                             expiresAt: content.expireTimer.map { content.sentAt + UInt64($0) * 1000 })
    }

    /// A message that failed before it was encrypted (a device list still stale, the relay unreachable
    /// while a new session's bundle was needed) is kept in its conversation, marked failed, so what the
    /// user typed is never lost: `/retry` (`parley retry`) sends it again. A send refused for what it is
    /// (no such contact, an untrusted key) is not kept: sending it again would be refused the same way.
    private func keepUnsent(_ content: Content, in conversation: ConversationId, after error: any Error) throws {
        switch error {
        case ClientError.unknownContact, ClientError.invalidAddress, ClientError.identityChanged, ClientError.messageTooLarge,
             ClientError.deviceRevoked, ClientError.blocked: return
        default: break
        }
        guard try store.message(sentBy: ownAddress, clientMessageId: content.messageId) == nil else { return }
        let kept = record(of: content, in: conversation, state: .failed)
        _ = try store.insertMessages([kept])
        emit(.message(kept))
    }

    /// The account whose devices (and this account's own other devices) a content of `conversation` is
    /// encrypted for.
    static func recipient(of conversation: ConversationId) throws(ClientError) -> AccountAddress {
        switch conversation {
        case .direct(let peer): peer
        case .group(let id): throw .notDirect(id)
        }
    }

    /// The largest envelope every relay takes: parley-relay's default `--max-envelope-bytes` (PROTOCOL.md §13;
    /// a test checks the two agree). A relay set lower refuses larger ones with 413, and the outbox marks
    /// such a message failed.
    public static let envelopeLimit = 96 * 1024

    /// The most bytes of text `body` could carry to `destination` (the rest of the content, and this account's
    /// address in the sender certificate, taking their share of the envelope).
    func textLimit(for body: Content.Body, destination: String) -> Int {
        let content = Content(messageId: [UInt8](repeating: 0, count: MessageId.length), sentAt: 0, destination: destination, body: body)
        let text = body.displayText?.utf8.count ?? 0
        let largest = EnvelopeSize.largestContent(within: Self.envelopeLimit, senderAddressBytes: account.address.utf8.count)
        return max(0, largest - (content.encoded.count - text))
    }

    /// Refuses, before anything is encrypted or stored, a content whose envelope would pass `envelopeLimit`:
    /// such a message would wait in the outbox for a relay that never takes it.
    func checkFits(_ content: Content) throws {
        let largest = EnvelopeSize.largestContent(within: Self.envelopeLimit, senderAddressBytes: account.address.utf8.count)
        guard content.encoded.count > largest else { return }
        throw ClientError.messageTooLarge(bytes: content.body.displayText?.utf8.count ?? 0,
                                          limit: textLimit(for: content.body, destination: content.destination))
    }

    public func sendReceipt(to peer: AccountAddress, read: Bool, messageIds: [[UInt8]]) async throws {
        guard !messageIds.isEmpty else { return }
        try await sendControl(.receipt(read: read, messageIds: messageIds), to: peer)
    }

    public func sendTyping(to peer: AccountAddress, started: Bool) async throws {
        try await sendControl(.typing(started: started), to: peer)
    }

    /// Sends a control content (a receipt, typing, a trust decision, a device's readiness, a GroupInfo key
    /// request or answer: nothing kept in history) to the devices of `peer` and this account's others.
    func sendControl(_ body: Content.Body, to peer: AccountAddress) async throws {
        try await send(Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: .direct(peer), body: body),
                       to: peer)
    }

    /// Returns the history record as the drain left it (sent), when it has one.
    @discardableResult
    func send(_ content: Content, to peer: AccountAddress) async throws -> MessageRecord? {
        let (content, sharing) = try sharingDeliveryAccess(content, with: peer)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            sendQueue.append(QueuedSend(content: content, peer: peer, continuation: continuation))
            if !encrypting {
                encrypting = true
                Task { await self.encryptQueued() }
            }
        }
        // Encrypted and in the outbox: the key reaches the peer with it.
        if let sharing { try store.setDeliveryAccessKeyShared(sharing, with: peer) }
        return try await flush(batch: content.messageId)
    }

    private struct QueuedSend {
        let content: Content
        let peer: AccountAddress
        let continuation: CheckedContinuation<Void, any Error>
    }

    /// Encrypts and commits what concurrent sends have queued meanwhile: each peer's contents in order, in
    /// one commit (`SessionManager.send(batch:to:)`), so a burst of sends costs one durable write rather
    /// than one each. A batch that fails is retried one content at a time, so each send gets its own outcome.
    private func encryptQueued() async {
        while !sendQueue.isEmpty {
            let queued = sendQueue
            sendQueue = []
            var peers: [AccountAddress] = []
            var byPeer: [AccountAddress: [QueuedSend]] = [:]
            for item in queued {
                if byPeer[item.peer] == nil { peers.append(item.peer) }
                byPeer[item.peer, default: []].append(item)
            }
            for peer in peers {
                let items = byPeer[peer]!
                if items.count > 1 {
                    do {
                        try await ensureDeviceList(peer)
                        _ = try await manager.send(batch: items.map(\.content), to: peer)
                        for item in items { item.continuation.resume() }
                        continue
                    } catch {}
                }
                for item in items {
                    do {
                        try await encrypt(item.content, to: peer)
                        item.continuation.resume()
                    } catch {
                        item.continuation.resume(throwing: error)
                    }
                }
            }
        }
        encrypting = false
    }

    /// Encrypts and commits one content. A bundle the relay no longer has (404: that device left its
    /// account's list, as when another device of this account, or `parley devices revoke` on this home,
    /// revoked one while this engine ran), or one under another key than the list held here names (the
    /// device rotated its key, `parley rotate-keys`), means a device list held here is stale: both lists
    /// are fetched again and the content encrypted once more for the devices they name now.
    private func encrypt(_ content: Content, to peer: AccountAddress) async throws {
        try await ensureDeviceList(peer)
        do {
            _ = try await manager.send(content, to: peer)
        } catch ClientError.relay(status: 404, _, _), ProtocolError.senderMismatch {
            try await refreshOwnDeviceList()
            if peer != ownAddress { try await refreshDeviceList(peer) }
            try await ensureDeviceList(peer)
            _ = try await manager.send(content, to: peer)
        }
    }

    func ensureDeviceList(_ peer: AccountAddress) async throws {
        if peer == ownAddress { return }
        guard var contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        if contact.account.deviceList == nil {
            try await addContact(peer)
            contact = try store.contact(peer) ?? contact
        }
        guard contact.trust.allowsSending else { throw ClientError.identityChanged(peer) }
    }

    func deviceList(of address: AccountAddress) throws -> SignedDeviceList? {
        address == ownAddress ? account.deviceList : try store.contact(address)?.account.deviceList
    }

    /// Fetches this account's device list from the relay and adopts it if it is newer and signed by the
    /// account key (another device was linked or revoked).
    public func refreshOwnDeviceList() async throws {
        try await refreshDeviceList(ownAddress)
    }

    func refreshDeviceList(_ address: AccountAddress) async throws {
        let response = try await peerRelay(for: address).account(address.description)
        let list = try SignedDeviceList(verifying: response.deviceList.bytes)
        if address == ownAddress {
            try await manager.updateDeviceListIfNewer(list, for: address)
            account = await manager.account
            try store.saveLocalAccount(account)
        } else {
            try await learn(list, for: address, keyChange: response.keyChange?.bytes)
        }
    }

    /// The relay that serves `address` (contacts may live on other relays).
    func peerRelay(for address: AccountAddress) throws -> any RelayTransport {
        try relay.relay(serving: address, homeRelay: ownAddress.relay)
    }

    // MARK: Events and the connection

    /// The line a failed mailbox drain shows, or nil when the connection state says it already (the relay
    /// cannot be reached) or the drain was only cancelled.
    static func receiveProblem(_ error: any Error) -> String? {
        switch error {
        case is CancellationError: nil
        case ClientError.network, ClientError.timedOut: nil
        case let error as ClientError: "cannot receive: \(error.description)"
        case let error as StoreError: "cannot receive: \(error.description)"
        default: "cannot receive: \(error)"
        }
    }

    /// A stream of everything front ends display. Several subscribers may listen at once.
    public func subscribe() -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: EngineEvent.self, bufferingPolicy: .bufferingNewest(1024))
        let id = UUID()
        events[id] = continuation
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(id) } }
        return stream
    }

    private func unsubscribe(_ id: UUID) { events[id] = nil }

    func emit(_ event: EngineEvent) {
        if case .message(let record) = event, record.expiresAt != nil { rescheduleExpiry() }
        for continuation in events.values { continuation.yield(event) }
    }

    /// Keeps the push channel open and drains the mailbox on every wake and every (re)connect, until the
    /// task is cancelled. The outbox is retried on every reconnect.
    public func runConnection() async {
        retriesOutbox = true
        startExpiryTimer()
        defer {
            stopExpiryTimer()
            retriesOutbox = false
            outboxRetry?.cancel()
            outboxRetry = nil
        }
        // What a one-shot command left in the outbox goes now, without waiting for the push channel (a
        // failure schedules the retries).
        Task { try? await self.flushOutbox() }
        await relay.listen(
            token: { [self] in try await self.sessionToken() },
            onWake: { [self] in await self.wake() },
            onState: { [self] state in
                await self.emit(.connection(state))
                if state == .connected { try? await self.flushOutbox() }
            })
        wakeDrain?.cancel()
    }
}

/// Fetches bundles for the session manager, from the relay that serves each device's account (reached as
/// every other request to that relay is: `RelayTransport.relay(serving:homeRelay:)`).
struct RelayBundles: PreKeyBundleSource {
    let home: any RelayTransport
    /// This account's relay name (`HOST[:PORT]`).
    let homeRelay: String
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        // The session manager names devices by their text, which came from this device's store.
        let relay = try home.relay(serving: try AccountAddress(device.address), homeRelay: homeRelay)
        return try PreKeyBundle(decoding: try await relay.bundle(address: device.address, deviceId: device.deviceId).bundle.bytes)
    }
}
