import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Something a front end shows: a message arrived or changed state, someone is typing, the connection
/// changed, a message could not be read.
public enum EngineEvent: Sendable, Equatable {
    case message(MessageRecord)
    case receipt(from: String, read: Bool, messageIds: [[UInt8]])
    case typing(from: String, started: Bool)
    case undecryptable(from: String?, reason: String)
    case identityChanged(address: String, trust: TrustState)
    case devicesChanged(address: String, added: [UInt32], removed: [UInt32], suspicious: Bool)
    case connection(PushListener.State)
    /// Another device of this account read these messages of `conversation`.
    case readElsewhere(conversation: String, messageIds: [[UInt8]])
}

/// The client engine shared by every front end: account creation, contacts, sending through the outbox,
/// and the receive path wake → fetch → decrypt → commit → acknowledge. All state lives in the encrypted
/// store; the engine is an actor so that one device's operations never interleave.
public actor Engine {
    public nonisolated let store: EncryptedStore
    public nonisolated let relay: RelayClient
    public internal(set) var account: LocalAccount
    let manager: SessionManager
    let clock: any WallClock
    var token: String?
    public let trustPolicy: TrustPolicy
    private var events: [UUID: AsyncStream<EngineEvent>.Continuation] = [:]
    /// The outbox drain in progress (see `drainOutbox`), and the sends waiting for their batch in it.
    private var outboxDrain: Task<Void, any Error>?
    private var batchWaiters: [[UInt8]: [CheckedContinuation<MessageRecord?, any Error>]] = [:]
    /// The push connection's drain (see `wake`), and delivery receipts it has yet to send, by sender.
    private var wakeDrain: Task<Void, Never>?
    private var drainAgain = false
    private var pendingReceipts: [String: [[UInt8]]] = [:]
    private var receiptSender: Task<Void, Never>?
    /// Contents waiting to be encrypted, and whether a task is encrypting (see `encryptQueued`).
    private var sendQueue: [QueuedSend] = []
    private var encrypting = false

    public init(store: EncryptedStore, relay: RelayClient, clock: any WallClock = SystemWallClock(),
                trustPolicy: TrustPolicy = .onFirstUse) throws {
        guard let account = try store.localAccount() else { throw ClientError.noAccount }
        self.store = store
        self.relay = relay
        self.clock = clock
        self.account = account
        self.trustPolicy = trustPolicy
        manager = SessionManager(account: account, store: store, bundles: RelayBundles(relay: relay), clock: clock,
                                 newIdentityPolicy: trustPolicy == .never ? .refuse : .trustOnFirstUse)
    }

    // MARK: Account creation

    /// Creates the account on its relay: keys, a signed device list, registration, prekey upload. The
    /// store is written only after the relay accepted the account.
    public static func createAccount(_ address: AccountAddress, store: EncryptedStore, relay: RelayClient,
                                     clock: any WallClock = SystemWallClock()) async throws -> Engine {
        if let existing = try store.localAccount() { throw ClientError.accountExists(existing.address) }
        let now = clock.nowMilliseconds()
        let accountKey = Ed25519.KeyPair()
        let device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: now)],
                                         version: 1, accountKey: accountKey)
        let account = LocalAccount(address: address.description, accountKey: accountKey, device: device, deviceList: list,
                                   certificateExpiry: now + LocalAccount.certificateLifetime)
        let preKeys = LocalPreKeys.generate(oneTime: LocalPreKeys.defaultOneTimeCount)
        _ = try await relay.register(RegisterRequest(address: address.description, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                     deviceList: Base64Bytes(list.encoded)))
        try store.saveLocalAccount(account, preKeys: preKeys)
        let engine = try Engine(store: store, relay: relay, clock: clock)
        try await engine.uploadPreKeys(preKeys, full: true)
        return engine
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
            throw ClientError.deviceRevoked(address: account.address, deviceId: account.device.deviceId)
        }
        guard let relayName = AccountAddressParts.relay(of: account.address) else { throw ClientError.invalidAddress(account.address) }
        let signature = account.device.keyPair.sign(authenticationMessage(challenge: challenge.challenge.bytes, relayName: relayName))
        let session = try await relay.session(SessionRequest(address: account.address, deviceId: account.device.deviceId,
                                                             challenge: challenge.challenge, signature: Base64Bytes(signature)))
        token = session.token
        return session.token
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
        try await uploadPreKeys(keys, full: false, oneTimeIds: ec, pqIds: pq)
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
        let text = address.description
        let response = try await peerRelay(for: text).account(text)
        let list = try SignedDeviceList(verifying: response.deviceList.bytes)
        guard list.accountKey.bytes == response.accountKey.bytes else { throw ClientError.malformedResponse("device list not signed by the account key") }
        if try store.contact(text) != nil {
            try await learn(list, for: text)
            return try store.contact(text)!
        }
        let contact = Contact(address: text, account: KnownAccount(accountKey: list.accountKey, deviceList: list),
                              trust: trustPolicy == .never ? .untrusted : .unverified)
        try store.saveContact(contact)
        return contact
    }

    // MARK: Sending

    /// Encrypts `text` for every device of `peer` and this account's other devices, commits it to history
    /// and the outbox in one transaction, then tries to deliver. Returns the message as stored (pending if
    /// the relay could not be reached: the outbox keeps it for the next attempt).
    @discardableResult
    public func send(text: String, to peer: String, replyTo: [UInt8]? = nil) async throws -> MessageRecord {
        try await send(.message(text: text, replyTo: replyTo, attachment: nil), to: peer)
    }

    /// Sends a text-like body (a plain text when it has neither a reply nor an attachment) and returns it
    /// as stored.
    func send(_ body: Content.Body, to peer: String) async throws -> MessageRecord {
        var body = body
        if case .message(let text, nil, nil) = body { body = .text(text) }
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), destination: peer, body: body)
        if let stored = try await send(content, to: peer) { return stored }
        var replyTo: [UInt8]?, attachment: AttachmentPointer?
        if case .message(_, let quoted, let pointer) = body { (replyTo, attachment) = (quoted, pointer) }
        return try store.message(sentBy: account.address, clientMessageId: content.messageId)
            ?? MessageRecord(conversation: peer, direction: .outgoing, sender: account.deviceAddress, clientMessageId: content.messageId,
                             sentAt: content.sentAt, receivedAt: content.sentAt, text: body.displayText ?? "", state: .pending,
                             replyTo: replyTo, attachment: attachment)
    }

    public func sendReceipt(to peer: String, read: Bool, messageIds: [[UInt8]]) async throws {
        guard !messageIds.isEmpty else { return }
        try await send(Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), destination: peer,
                               body: .receipt(read: read, messageIds: messageIds)), to: peer)
    }

    public func sendTyping(to peer: String, started: Bool) async throws {
        try await send(Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), destination: peer,
                               body: .typing(started: started)), to: peer)
    }

    /// Returns the history record as the drain left it (sent), when it has one.
    @discardableResult
    func send(_ content: Content, to peer: String) async throws -> MessageRecord? {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            sendQueue.append(QueuedSend(content: content, peer: peer, continuation: continuation))
            if !encrypting {
                encrypting = true
                Task { await self.encryptQueued() }
            }
        }
        return try await flush(batch: content.messageId)
    }

    private struct QueuedSend {
        let content: Content
        let peer: String
        let continuation: CheckedContinuation<Void, any Error>
    }

    /// Encrypts and commits what concurrent sends have queued meanwhile: each peer's contents in order, in
    /// one commit (`SessionManager.send(batch:to:)`), so a burst of sends costs one durable write rather
    /// than one each. A batch that fails is retried one content at a time, so each send gets its own outcome.
    private func encryptQueued() async {
        while !sendQueue.isEmpty {
            let queued = sendQueue
            sendQueue = []
            var peers: [String] = []
            var byPeer: [String: [QueuedSend]] = [:]
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
                        try await ensureDeviceList(peer)
                        _ = try await manager.send(item.content, to: peer)
                        item.continuation.resume()
                    } catch {
                        item.continuation.resume(throwing: error)
                    }
                }
            }
        }
        encrypting = false
    }

    private func ensureDeviceList(_ peer: String) async throws {
        if peer == account.address { return }
        guard var contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        if contact.account.deviceList == nil {
            try await addContact(try AccountAddress(peer))
            contact = try store.contact(peer) ?? contact
        }
        guard contact.trust.allowsSending else { throw ClientError.identityChanged(peer) }
    }

    /// Posts every outbox batch, one all-or-nothing request per (batch, recipient account). A batch the
    /// relay refuses because the recipient's device list changed is encrypted again for the new list.
    /// Network failures leave the outbox as it is and throw.
    public func flushOutbox() async throws {
        try await drainOutbox().value
    }

    /// Waits until the outbox drain has dealt with `batch` — posted every envelope of it, or given up on
    /// it — rather than for the whole outbox, which under steady sending may never be empty.
    private func flush(batch: [UInt8]) async throws -> MessageRecord? {
        let drain = drainOutbox()
        defer { _ = drain }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<MessageRecord?, any Error>) in
            batchWaiters[batch, default: []].append(continuation)
        }
    }

    /// The one drain of the outbox, started if none runs. Concurrent sends share it: a second drain would
    /// post the same entries again. It reads the outbox again after every round and ends only on a read
    /// that finds it empty (clearing `outboxDrain` in the same actor turn), so whatever was committed to
    /// the outbox before a caller joins is posted by the drain it joins.
    private func drainOutbox() -> Task<Void, any Error> {
        if let running = outboxDrain { return running }
        let task = Task { try await self.runOutboxDrain() }
        outboxDrain = task
        return task
    }

    /// Entries read per round; each round ends in one commit that removes what was posted.
    private static let outboxRound = 256

    private func runOutboxDrain() async throws {
        var attempts: [[UInt8]: Int] = [:]
        var stopped: String?
        do {
            while true {
                var entries = try store.outboxEntries(limit: Self.outboxRound)
                guard let first = entries.first else {
                    finishDrain(nil)
                    if let stopped { throw ClientError.identityChanged(stopped) }
                    return
                }
                // A round cut short by the limit leaves out its last batch, which may be incomplete.
                if entries.count == Self.outboxRound, let last = entries.last?.envelope.batch, last != first.envelope.batch {
                    entries.removeAll { $0.envelope.batch == last }
                }
                var round = OutboxRound()
                do {
                    try await post(entries, round: &round, attempts: &attempts, stopped: &stopped)
                } catch {
                    try completeRound(round)
                    throw error
                }
                try completeRound(round)
            }
        } catch {
            finishDrain(error)
            throw error
        }
    }

    /// What one round of the drain did, committed together by `completeRound`.
    private struct OutboxRound {
        /// Entries posted (or given up on), to remove from the outbox.
        var done: [Int64] = []
        /// Batches posted to a peer, to mark sent.
        var sent: [[UInt8]] = []
        /// Batches given up on (the relay kept refusing them, or the contact's key is not trusted).
        var failed: [[UInt8]] = []
        /// Every batch the round saw, and those it re-encrypted into new entries (not finished yet).
        var seen: [[UInt8]] = []
        var reencrypted: Set<[UInt8]> = []
        /// Groups of each batch not dealt with yet: a round cut short by an error (the relay unreachable)
        /// has not finished their batches, whose sends must get that error rather than a success.
        var open: [[UInt8]: Int] = [:]
        var stopped: [[UInt8]: String] = [:]
    }

    /// Posts the groups of `entries` in order, one request per (batch, recipient account).
    private func post(_ entries: [OutboxEntry], round: inout OutboxRound, attempts: inout [[UInt8]: Int], stopped: inout String?) async throws {
        var groups: [[OutboxEntry]] = []
        var index: [GroupKey: Int] = [:]
        for entry in entries {
            let key = GroupKey(batch: entry.envelope.batch, address: entry.envelope.recipient.address)
            if let i = index[key] { groups[i].append(entry) } else {
                index[key] = groups.count
                groups.append([entry])
                if !round.seen.contains(entry.envelope.batch) { round.seen.append(entry.envelope.batch) }
            }
        }
        for group in groups { round.open[group[0].envelope.batch, default: 0] += 1 }
        var lists: [String: SignedDeviceList?] = [:]
        for group in groups {
            let first = group[0]
            let address = first.envelope.recipient.address
            var messages: [OutgoingMessage] = []
            for entry in group {
                let recipient = entry.envelope.recipient
                if lists[recipient.address] == nil { lists[recipient.address] = try deviceList(of: recipient.address) }
                let key = lists[recipient.address]??.device(recipient.deviceId)?.identityKey.bytes ?? []
                messages.append(OutgoingMessage(deviceId: recipient.deviceId, deviceKey: Base64Bytes(key),
                                                envelope: Base64Bytes(entry.envelope.envelope)))
            }
            do {
                let token = address == account.address ? try await sessionToken() : nil
                try await peerRelay(for: address).send(SendRequest(messages: messages), to: address, token: token)
                round.done += group.map(\.id)
                round.open[first.envelope.batch]! -= 1
                if address != account.address { round.sent.append(first.envelope.batch) }
            } catch ClientError.deviceMismatch {
                let tries = attempts[first.envelope.batch, default: 0] + 1
                attempts[first.envelope.batch] = tries
                guard tries <= 3, let content = try? Content(decoding: first.content) else {
                    round.done += group.map(\.id)
                    round.failed.append(first.envelope.batch)
                    round.open[first.envelope.batch]! -= 1
                    continue
                }
                try await refreshDeviceList(address)
                lists[address] = nil
                try store.removeFromOutbox(group.map(\.id))
                // The refreshed list may carry a new account key the trust policy did not accept (a verified
                // contact's key changed): nothing is encrypted to it until the user verifies or trusts it.
                if address != account.address, try store.contact(address)?.trust.allowsSending == false {
                    round.failed.append(first.envelope.batch)
                    round.stopped[first.envelope.batch] = address
                    round.open[first.envelope.batch]! -= 1
                    stopped = address
                    continue
                }
                _ = try await manager.send(content, to: address, includeOwnDevices: false)
                round.reencrypted.insert(first.envelope.batch)
                round.open[first.envelope.batch]! -= 1
            }
        }
    }

    private struct GroupKey: Hashable {
        let batch: [UInt8]
        let address: String
    }

    /// One commit for the round: posted entries leave the outbox and their messages become sent (failed
    /// ones failed); then the sends waiting for a batch the round finished are resumed.
    private func completeRound(_ round: OutboxRound) throws {
        guard !round.done.isEmpty || !round.failed.isEmpty || !round.seen.isEmpty else { return }
        let sent = try store.completeOutbox(round.done, sentBy: account.address, batches: round.sent)
        if !round.failed.isEmpty { try store.advanceState(ofMessagesSentBy: account.address, ids: round.failed, to: .failed) }
        for record in sent { emit(.message(record)) }
        for batch in round.seen where !round.reencrypted.contains(batch) && round.open[batch, default: 0] == 0 {
            let error = round.stopped[batch].map { ClientError.identityChanged($0) }
            let record = sent.last { $0.clientMessageId == batch }
            for waiter in batchWaiters.removeValue(forKey: batch) ?? [] {
                if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: record) }
            }
        }
    }

    /// Ends the drain in the same actor turn as its last outbox read: waiters still registered are
    /// resumed (with the drain's error, or — their batch being gone from the outbox — with success).
    private func finishDrain(_ error: (any Error)?) {
        outboxDrain = nil
        let waiters = batchWaiters
        batchWaiters = [:]
        for waiter in waiters.values.joined() {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    private func deviceList(of address: String) throws -> SignedDeviceList? {
        address == account.address ? account.deviceList : try store.contact(address)?.account.deviceList
    }

    /// Fetches this account's device list from the relay and adopts it if it is newer and signed by the
    /// account key (another device was linked or revoked).
    public func refreshOwnDeviceList() async throws {
        try await refreshDeviceList(account.address)
    }

    private func refreshDeviceList(_ address: String) async throws {
        let response = try await peerRelay(for: address).account(address)
        let list = try SignedDeviceList(verifying: response.deviceList.bytes)
        if address == account.address {
            try await manager.updateDeviceListIfNewer(list, for: address)
            account = await manager.account
            try store.saveLocalAccount(account)
        } else {
            try await learn(list, for: address)
        }
    }

    /// The relay that serves `address` (contacts may live on other relays).
    func peerRelay(for address: String) throws -> RelayClient {
        guard let relayName = AccountAddressParts.relay(of: address),
              relayName != AccountAddressParts.relay(of: account.address) else { return relay }
        // Plain transport to a contact's relay only where it would be allowed to this device's own relay:
        // on loopback, or with --insecure.
        let home = relay.endpoint
        return try RelayClient(endpoint: try RelayEndpoint(relay: relayName, tls: home.baseURL.hasPrefix("https") ? true : nil,
                                                           insecure: home.allowsInsecure, caFile: home.caFile))
    }

    // MARK: Receiving

    /// Drains the mailbox a page at a time: decrypt the page and commit it (messages and ratchet states in
    /// one transaction), file it into history (one transaction), report it to subscribers, and only then
    /// acknowledge it to the relay. Delivery receipts for what arrived are sent before it returns.
    /// Returns what arrived.
    @discardableResult
    public func receivePending() async throws -> [EngineEvent] {
        let arrived = try await drainMailbox()
        try await sendDeliveryReceipts(for: arrived)
        return arrived
    }

    private func drainMailbox() async throws -> [EngineEvent] {
        var arrived = try fileInbox()
        for event in arrived { emit(event) }
        var preKeysLow = false
        while true {
            let page = try await authorised { try await relay.fetch(limit: 100, token: $0) }
            preKeysLow = preKeysLow || page.preKeysLow
            let events = try await receive(page.messages.map(\.envelope.bytes), receivedAt: page.messages.map(\.receivedAt))
            // Durable now: shown at once; the acknowledgement follows (a crash before it only means the
            // envelopes come again and are recognised as repeats).
            for event in events { emit(event) }
            if !page.messages.isEmpty { try await authorised { try await relay.acknowledge(page.messages.map(\.id), token: $0) } }
            arrived += events
            if !page.more { break }
        }
        if preKeysLow { try? await refillPreKeys() }
        return arrived
    }

    /// Receives one page: what can be decrypted against what this device already knows goes through the
    /// session manager as one batch (one commit), and is filed in one transaction. An envelope from an
    /// account never seen, from a device not in the sender's list, or with another account key than the
    /// one known takes the one-at-a-time path after it, which asks the sender's relay first. Every
    /// envelope ends stored, recorded as undecryptable, or recognised as a repeat — never silently dropped.
    private func receive(_ envelopes: [[UInt8]], receivedAt: [UInt64]) async throws -> [EngineEvent] {
        guard !envelopes.isEmpty else { return [] }
        let outcomes = try await manager.receive(batch: envelopes, receivedAt: receivedAt, deferUnknownSenders: true)
        var events: [EngineEvent] = []
        var oneByOne: [(envelope: [UInt8], receivedAt: UInt64)] = []
        for ((envelope, time), outcome) in zip(zip(envelopes, receivedAt), outcomes) {
            guard case .failure(let error) = outcome else { continue }
            switch error {
            case ProtocolError.duplicateOrReplayedMessage:
                break   // already stored before a crash or a lost acknowledgement: acknowledge again
            case is UnknownSenderAccount, ProtocolError.unknownDevice:
                // A device of a contact or of this account that this device's copy of the list lacks yet.
                oneByOne.append((envelope, time))
            case ProtocolError.identityChanged(let address) where address != account.address:
                oneByOne.append((envelope, time))
            default:
                // Never a silent drop: the failure is recorded in history before the envelope is acknowledged.
                events.append(try recordUndecryptable(error, envelope: envelope))
            }
        }
        events += try fileInbox()
        for (envelope, time) in oneByOne {
            do {
                try await receiveRefreshingSender(envelope, receivedAt: time)
            } catch ProtocolError.duplicateOrReplayedMessage {
            } catch {
                events.append(try recordUndecryptable(error, envelope: envelope))
            }
            events += try fileInbox()
        }
        return events
    }

    /// Receives one envelope. When its sender certificate names a device this device's copy of the
    /// sender's device list does not have (a contact added or restored a device), the list is fetched
    /// again from the relay — it must verify under the same account key — and the envelope tried once more.
    private func receiveRefreshingSender(_ envelope: [UInt8], receivedAt: UInt64) async throws {
        // A sender never seen before: its account key is taken from its relay's signed device list (first
        // use), not from the certificate, which anyone can sign for any address; a certificate with another
        // key is then an identity change and is refused. Only if that relay cannot be reached is the
        // certificate's key taken on first use.
        if let sender = try? SealedSender.open(envelope, identity: account.device).certificate.address,
           sender != account.address, try store.contact(sender) == nil {
            do { try await refreshDeviceList(sender) } catch ClientError.network {}
        }
        do {
            _ = try await manager.receive(envelope, receivedAt: receivedAt)
        } catch ProtocolError.unknownDevice(let address, _) {
            // Also this account's own list: a device linked elsewhere writes before this one has seen it.
            try await refreshDeviceList(address)
            _ = try await manager.receive(envelope, receivedAt: receivedAt)
        } catch ProtocolError.identityChanged(let address) where address != account.address {
            // The sender's certificate carries another account key: check it against the relay's signed
            // device list, let the trust policy decide, and try once more.
            try await refreshDeviceList(address)
            _ = try await manager.receive(envelope, receivedAt: receivedAt)
        }
    }

    /// Moves decrypted messages from the inbox into history, all in one transaction.
    private func fileInbox() throws -> [EngineEvent] {
        let inbox = try store.inbox()
        guard !inbox.isEmpty else { return [] }
        enum Pending {
            case message
            case event(EngineEvent)
            case unreadable(sender: String)
            case trust(address: String, accountKey: [UInt8], state: UInt8)
            case nothing
        }
        var filings: [InboxFiling] = []
        var pending: [Pending] = []
        let now = clock.nowMilliseconds()
        for (id, received) in inbox {
            guard let content = try? Content(decoding: received.content) else {
                filings.append(InboxFiling(inboxId: id))
                pending.append(.unreadable(sender: received.sender.address))
                continue
            }
            let fromSelf = received.sender.address == account.address
            switch content.body {
            case .text, .message:
                var replyTo: [UInt8]?, attachment: AttachmentPointer?
                if case .message(_, let quoted, let pointer) = content.body { (replyTo, attachment) = (quoted, pointer) }
                let record = MessageRecord(conversation: fromSelf ? content.destination : received.sender.address,
                                           direction: fromSelf ? .outgoing : .incoming, sender: received.sender,
                                           clientMessageId: content.messageId, sentAt: content.sentAt,
                                           receivedAt: now, text: content.body.displayText ?? "", state: fromSelf ? .sent : .received,
                                           replyTo: replyTo, attachment: attachment)
                filings.append(InboxFiling(inboxId: id, message: record))
                pending.append(.message)
            case .receipt(let read, let ids) where fromSelf:
                // Another device of this account read these messages of `destination`.
                filings.append(InboxFiling(inboxId: id, receipt: read ? (ids, .seen) : nil, receiptAbout: content.destination))
                pending.append(read ? .event(.readElsewhere(conversation: content.destination, messageIds: ids)) : .nothing)
            case .receipt(let read, let ids):
                filings.append(InboxFiling(inboxId: id, receipt: (ids, read ? .read : .delivered)))
                pending.append(.event(.receipt(from: received.sender.address, read: read, messageIds: ids)))
            case .trustDecision(let address, let key, let state):
                filings.append(InboxFiling(inboxId: id))
                pending.append(fromSelf ? .trust(address: address, accountKey: key, state: state) : .nothing)
            case .typing(let started):
                filings.append(InboxFiling(inboxId: id))
                pending.append(fromSelf ? .nothing : .event(.typing(from: received.sender.address, started: started)))
            }
        }
        let stored = try store.file(filings, ownAddress: account.address)
        var events: [EngineEvent] = []
        for (kind, record) in zip(pending, stored) {
            switch kind {
            case .message: if let record { events.append(.message(record)) }
            case .event(let event): events.append(event)
            case .unreadable(let sender):
                events.append(try recordUndecryptable(ProtocolError.malformed("unreadable content"), sender: sender))
            case .trust(let address, let key, let state):
                if let event = try applyTrustDecision(address: address, accountKey: key, state: state) { events.append(event) }
            case .nothing: break
            }
        }
        return events
    }

    /// Records, in the sender's conversation when the envelope names one, that a message could not be
    /// read, so the user sees the gap instead of losing it silently.
    private func recordUndecryptable(_ error: any Error, envelope: [UInt8]? = nil, sender: String? = nil) throws -> EngineEvent {
        let from = sender ?? envelope.flatMap { try? SealedSender.open($0, identity: account.device).certificate.address }
        let reason = String(describing: error)
        let now = clock.nowMilliseconds()
        let record = MessageRecord(conversation: from ?? "(unknown sender)", direction: .incoming,
                                   sender: DeviceAddress(address: from ?? "(unknown sender)", deviceId: 0),
                                   clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now,
                                   text: "A message could not be decrypted: \(reason)", state: .failed)
        try store.insertMessages([record])
        return .undecryptable(from: from, reason: reason)
    }

    private func sendDeliveryReceipts(for events: [EngineEvent]) async throws {
        var bySender: [String: [[UInt8]]] = [:]
        for case .message(let record) in events where record.direction == .incoming {
            bySender[record.sender.address, default: []].append(record.clientMessageId)
        }
        try await sendReceipts(bySender)
    }

    /// At most this many ids per receipt: a receipt for a whole drained backlog must still fit in one
    /// envelope (and the content's 16-bit count).
    private static let receiptIdsPerContent = 500

    private func sendReceipts(_ bySender: [String: [[UInt8]]]) async throws {
        for (sender, ids) in bySender.sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: ids.count, by: Self.receiptIdsPerContent) {
                let chunk = Array(ids[start..<min(ids.count, start + Self.receiptIdsPerContent)])
                try? await sendReceipt(to: sender, read: false, messageIds: chunk)
            }
        }
    }

    /// How long the push connection gathers delivery receipts before sending them: under a stream of
    /// messages one receipt then covers many, instead of one receipt (a send of its own, and a receive at
    /// the other end) per drain.
    private static let receiptGathering: Duration = .milliseconds(10)

    /// Queues delivery receipts for what a drain of the push connection received (see `wake`).
    private func queueDeliveryReceipts(for events: [EngineEvent]) {
        for case .message(let record) in events where record.direction == .incoming {
            pendingReceipts[record.sender.address, default: []].append(record.clientMessageId)
        }
        guard !pendingReceipts.isEmpty, receiptSender == nil else { return }
        receiptSender = Task {
            while !pendingReceipts.isEmpty {
                try? await Task.sleep(for: Self.receiptGathering)
                let due = pendingReceipts
                pendingReceipts = [:]
                try? await sendReceipts(due)
            }
            receiptSender = nil
        }
    }

    /// A wake-up from the push channel. Drains the mailbox — or, if a drain is running, makes it drain
    /// once more when it is done: wake-ups that arrive during a drain cost one more fetch, not one each.
    /// Delivery receipts are gathered for a moment and sent apart from the drain (`queueDeliveryReceipts`).
    private func wake() {
        if wakeDrain != nil {
            drainAgain = true
            return
        }
        wakeDrain = Task {
            repeat {
                drainAgain = false
                if let arrived = try? await drainMailbox() { queueDeliveryReceipts(for: arrived) }
            } while drainAgain && !Task.isCancelled
            wakeDrain = nil
        }
    }

    // MARK: Events and the connection

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
        for continuation in events.values { continuation.yield(event) }
    }

    /// Keeps the push channel open and drains the mailbox on every wake and every (re)connect, until the
    /// task is cancelled. The outbox is retried on every reconnect.
    public func runConnection() async {
        let listener = PushListener(
            endpoint: relay.endpoint,
            token: { [self] in try await self.sessionToken() },
            onWake: { [self] in await self.wake() },
            onState: { [self] state in
                await self.emit(.connection(state))
                if state == .connected { try? await self.flushOutbox() }
            })
        await listener.run()
        wakeDrain?.cancel()
    }
}

/// Fetches bundles from the relay for the session manager.
struct RelayBundles: PreKeyBundleSource {
    let relay: RelayClient
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        var client = relay
        if let peer = AccountAddressParts.relay(of: device.address), peer != relay.endpoint.baseURL.split(separator: "/").last.map(String.init) {
            client = try RelayClient(endpoint: try RelayEndpoint(relay: peer, tls: relay.endpoint.baseURL.hasPrefix("https"),
                                                                 insecure: true, caFile: relay.endpoint.caFile))
        }
        return try PreKeyBundle(decoding: try await client.bundle(address: device.address, deviceId: device.deviceId).bundle.bytes)
    }
}

enum AccountAddressParts {
    static func relay(of address: String) -> String? { (try? AccountAddress(address))?.relay }
}
