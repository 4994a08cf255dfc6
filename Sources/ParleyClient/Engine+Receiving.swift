import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// The receive path: wake → fetch → decrypt → commit → file → acknowledge, and delivery receipts.
extension Engine {

    /// Drains the mailbox a page at a time: decrypt the page and commit it (ratchet states and the messages,
    /// filed into history, in one transaction), report it to subscribers, and only then
    /// acknowledge it to the relay. Stops at the first page the relay reports as the last one, so it returns
    /// even while mail keeps arriving. Delivery receipts for what arrived are sent before it returns.
    /// Returns what arrived.
    @discardableResult
    public func receivePending() async throws -> [EngineEvent] {
        try? await adoptDeliveryAccess()
        var arrived: [EngineEvent] = []
        try await drainMailbox(streaming: false) { arrived += $0 }
        try? store.checkpoint()
        await tendGroupsAfterDrain()
        try await sendDeliveryReceipts(for: arrived)
        return arrived
    }

    /// A drain is pipelined: while one page is decrypted and committed, the next is already on its way
    /// (`after` the last id in hand), and the request for it carries the acknowledgement of the page before,
    /// committed by then (`POST /v1/mailbox/ack?fetch=&after=`). While mail keeps arriving that is one request
    /// per page, and the relay's work and the transfer overlap the decryption. What is not acknowledged that
    /// way is acknowledged when the drain ends. `stored` gets each page's events once they are durable.
    ///
    /// `streaming` (the push connection): the drain goes on until a page comes back empty or the task is
    /// cancelled. Otherwise it stops at the first page the relay reports as its last (`more == false`).
    /// One-time prekeys are refilled once per drain, as soon as a page says they run low (between pages, so
    /// never while a page that may consume one is being stored).
    private func drainMailbox(streaming: Bool, stored: ([EngineEvent]) -> Void) async throws {
        let filed = try fileInbox()
        for event in filed { emit(event) }
        stored(filed)
        var refilled = false, restocked = false
        var page = try await authorised { try await relay.fetchWithGroups(limit: Self.pageSize, after: nil, token: $0) }
        var unacknowledged: [String] = []    // ids committed, not acknowledged yet
        while let last = page.messages.last?.id {
            let acknowledging = unacknowledged
            let goOn = streaming ? !Task.isCancelled : page.more
            let next = goOn ? Task { try await self.nextPage(acknowledging: acknowledging, after: last) } : nil
            var events: [EngineEvent] = [], heldIds: Set<String> = []
            do {
                // 1:1 envelopes as one batch; then the group entries, in the order the relay stored them
                // (a group's commits and messages must be processed in epoch order).
                let envelopes = page.messages.filter { $0.envelope != nil }
                let (received, held) = try await receive(envelopes.map { $0.envelope?.bytes ?? [] }, receivedAt: envelopes.map(\.receivedAt))
                events = received
                heldIds = Set(held.map { envelopes[$0].id })
                events += try await receiveGroupEntries(page.messages.compactMap(\.group), receivedAt: clock.nowMilliseconds())
            } catch {
                _ = try? await next?.value
                throw error
            }
            // Held envelopes (a sender not verified yet) stay in the mailbox and are tried again next drain.
            let done = page.messages.map(\.id).filter { !heldIds.contains($0) }
            // Durable now: shown at once; the acknowledgement follows (a crash before it only means the
            // envelopes come again and are recognised as repeats).
            for event in events { emit(event) }
            stored(events)
            if page.preKeysLow && !refilled {
                refilled = true
                try? await refillPreKeys()
            }
            if page.keyPackagesLow && !restocked {
                restocked = true
                try? await stockKeyPackages()
            }
            guard let next else {
                unacknowledged += done
                break
            }
            unacknowledged = done
            page = try await next.value
        }
        if !unacknowledged.isEmpty { try await authorised { try await relay.acknowledge(unacknowledged, token: $0) } }
        if page.preKeysLow && !refilled { try? await refillPreKeys() }
        if page.keyPackagesLow && !restocked { try? await stockKeyPackages() }
    }

    /// The page after `after`, asked for together with the acknowledgement of `ids` (mailbox version 2:
    /// 1:1 envelopes and group messages, PROTOCOL.md §17.5).
    private func nextPage(acknowledging ids: [String], after: String) async throws -> FetchResponseV2 {
        try await authorised { token in
            try await relay.acknowledgeWithGroups(ids, fetch: Self.pageSize, after: after, token: token)
        }
    }

    private static let pageSize = 100

    /// Receives one page: what can be decrypted against what this device already knows goes through the
    /// session manager as one batch, filed into history in the same commit. An envelope from an
    /// account never seen, from a device not in the sender's list, or with another account key than the
    /// one known takes the one-at-a-time path after it, which asks the sender's relay first. Every
    /// envelope ends stored, recorded as undecryptable, counted as discarded, or recognised as a repeat —
    /// never silently dropped — or, when its sender's account cannot be confirmed by the sender's relay yet,
    /// held: returned in `held` (indices into `envelopes`), not acknowledged, announced as unverified.
    private func receive(_ envelopes: [[UInt8]], receivedAt: [UInt64]) async throws -> (events: [EngineEvent], held: Set<Int>) {
        guard !envelopes.isEmpty else { return ([], []) }
        // The messages are filed into history in the transaction that commits the sessions (one durable
        // write per page; nothing passes through the inbox).
        let store = self.store, ownAddress = self.ownAddress, now = clock.nowMilliseconds(), blocked = try blockedAddresses()
        // A blocked contact's session starts are refused before anything is decrypted (no session, no
        // prekey used); what they send on a session that already exists is decrypted and dropped below.
        let refused = Set(blocked.map(\.description)), limits = expiryLimits
        let (outcomes, filed) = try await manager.receive(batch: envelopes, receivedAt: receivedAt, deferUnknownSenders: true,
                                                          refusingSessionsFrom: refused) { changes in
            let plan = Self.filingPlan(changes.allReceived.map { (nil, $0) }, ownAddress: ownAddress, now: now, blocked: blocked,
                                       limits: limits)
            return (pending: plan.pending, stored: try store.commit(changes, filing: plan.filings, ownAddress: ownAddress),
                    access: Self.deliveryAccessKeys(in: changes.allReceived))
        }
        var events: [EngineEvent] = []
        var discarded = 0
        var oneByOne: [(index: Int, envelope: [UInt8], receivedAt: UInt64)] = []
        for (index, ((envelope, time), outcome)) in zip(zip(envelopes, receivedAt), outcomes).enumerated() {
            guard case .failure(let error) = outcome else { continue }
            switch error {
            case ProtocolError.duplicateOrReplayedMessage:
                break   // already stored before a crash or a lost acknowledgement: acknowledge again
            case is RefusedSession:
                break   // a blocked contact's session start: dropped unread, as their messages are
            case is UnknownSenderAccount, ProtocolError.unknownDevice:
                // A device of a contact or of this account that this device's copy of the list lacks yet.
                oneByOne.append((index, envelope, time))
            case ProtocolError.identityChanged(let address) where address != ownAddress.description:
                oneByOne.append((index, envelope, time))
            default:
                // Never a silent drop: the failure is recorded in history (or, for what anyone could have sent,
                // counted) before the envelope is acknowledged.
                if let event = try recordUndecryptable(error, envelope: envelope) { events.append(event) } else { discarded += 1 }
            }
        }
        if let filed {
            try learnDeliveryAccess(filed.access)
            events += try self.events(filed.pending, stored: filed.stored)
        }
        var held: Set<Int> = []
        for (index, envelope, time) in oneByOne {
            do {
                try await receiveRefreshingSender(envelope, receivedAt: time)
            } catch ProtocolError.duplicateOrReplayedMessage {
            } catch is RefusedSession {
            } catch let refused as RefusedStranger {
                events.append(.refusedByPolicy(address: refused.address, reason: refused.reason))
            } catch let unverified as UnverifiedSender {
                held.insert(index)
                events.append(.unverifiedSender(address: unverified.address))
            } catch {
                if let event = try recordUndecryptable(error, envelope: envelope) { events.append(event) } else { discarded += 1 }
            }
            events += try fileInbox()
        }
        if discarded > 0 { events.append(.discarded(count: discarded, total: try store.countDiscardedEnvelopes(discarded))) }
        return (events, held)
    }

    /// Receives one envelope. When its sender certificate names a device this device's copy of the
    /// sender's device list does not have (a contact added or restored a device), the list is fetched
    /// again from the relay — it must verify under the same account key — and the envelope tried once more.
    private func receiveRefreshingSender(_ envelope: [UInt8], receivedAt: UInt64) async throws {
        let refused = Set(try blockedAddresses().map(\.description))
        // A sender never seen before: its account key is taken from its relay's signed device list (first
        // use), never from the certificate, which anyone can sign for any address; a certificate with
        // another key is then an identity change and is refused. While that relay cannot be reached the
        // envelope is held, unopened: nothing is decrypted, no contact is saved.
        if let text = try? SealedSender.open(envelope, identity: account.device).certificate.address,
           let sender = try? AccountAddress(text), sender != ownAddress, try store.contact(sender) == nil {
            if let reason = admitsContact(sender) { throw RefusedStranger(address: sender, reason: reason) }
            do { try await refreshDeviceList(sender) } catch ClientError.network { throw UnverifiedSender(address: sender) }
        }
        do {
            _ = try await manager.receive(envelope, receivedAt: receivedAt, refusingSessionsFrom: refused)
        } catch ProtocolError.unknownDevice(let address, _) {
            // Also this account's own list: a device linked elsewhere writes before this one has seen it.
            try await refreshDeviceList(try AccountAddress(address))
            _ = try await manager.receive(envelope, receivedAt: receivedAt, refusingSessionsFrom: refused)
        } catch ProtocolError.identityChanged(let address) where address != ownAddress.description {
            // The sender's certificate carries another account key: check it against the relay's signed
            // device list, let the trust policy decide, and try once more.
            try await refreshDeviceList(try AccountAddress(address))
            _ = try await manager.receive(envelope, receivedAt: receivedAt, refusingSessionsFrom: refused)
        }
    }

    /// Moves decrypted messages from the inbox into history, all in one transaction.
    private func fileInbox() throws -> [EngineEvent] {
        let inbox = try store.inbox()
        guard !inbox.isEmpty else { return [] }
        let ownAddress = self.ownAddress
        let plan = Self.filingPlan(inbox.map { ($0.id, $0.message) }, ownAddress: ownAddress, now: clock.nowMilliseconds(),
                                   blocked: try blockedAddresses(), limits: expiryLimits)
        let stored = try store.file(plan.filings, ownAddress: ownAddress)
        try learnDeliveryAccess(Self.deliveryAccessKeys(in: inbox.map(\.message)))
        return try events(plan.pending, stored: stored)
    }

    /// The delivery access keys (PROTOCOL.md §13.1) that came with received contents, by sender account.
    static func deliveryAccessKeys(in received: [ReceivedMessage]) -> [(address: AccountAddress, key: [UInt8])] {
        received.compactMap { message in
            guard let sender = try? message.sender.account else { return nil }
            return (try? Content(decoding: message.content))?.deliveryAccess.map { (sender, $0) }
        }
    }

    /// How each received message is filed into history (`InboxFiling`), and what it tells the user once
    /// filed (`FilingOutcome`). Pure, so that a receive can file in the transaction that commits it.
    /// Whatever a `blocked` sender sent is dropped here: decrypted (the ratchet must stay in step with
    /// theirs, and the envelope is acknowledged so it does not pile up on the relay) but never stored,
    /// shown or answered with a receipt.
    /// A message is deleted its timer (`Content.expireTimer`, never longer than `limits` allow) after `now`.
    static func filingPlan(_ received: [(inboxId: Int64?, message: ReceivedMessage)], ownAddress: AccountAddress, now: UInt64,
                           blocked: Set<AccountAddress> = [], limits: ExpiryLimits = ExpiryLimits())
        -> (filings: [InboxFiling], pending: [FilingOutcome]) {
        var filings: [InboxFiling] = []
        var pending: [FilingOutcome] = []
        for (id, received) in received {
            // The sender certificate's decoder took only an account address; nil would be a damaged inbox row.
            let sender = try? received.sender.account
            if let sender, blocked.contains(sender) {
                filings.append(InboxFiling(inboxId: id))
                pending.append(.nothing)
                continue
            }
            guard let sender, let content = try? Content(decoding: received.content) else {
                filings.append(InboxFiling(inboxId: id))
                pending.append(.unreadable(sender: sender))
                continue
            }
            let fromSelf = sender == ownAddress
            // A device of this account names the conversation; any other sender's is the one with it. A
            // group's conversation is written only by what its MLS messages carry, never by a 1:1 envelope.
            guard let conversation = fromSelf ? content.conversation?.peer.map(ConversationId.direct) : .direct(sender) else {
                filings.append(InboxFiling(inboxId: id))
                pending.append(.unreadable(sender: sender))
                continue
            }
            switch content.body {
            case .text, .message:
                var replyTo: [UInt8]?, attachment: AttachmentPointer?
                if case .message(_, let quoted, let pointer) = content.body { (replyTo, attachment) = (quoted, pointer) }
                let record = MessageRecord(conversation: conversation,
                                           direction: fromSelf ? .outgoing : .incoming, sender: received.sender,
                                           clientMessageId: content.messageId, sentAt: content.sentAt,
                                           receivedAt: now, text: content.body.displayText ?? "", state: fromSelf ? .sent : .received,
                                           replyTo: replyTo, attachment: attachment,
                                           expiresAt: limits.applied(to: content.expireTimer).map { now + UInt64($0) * 1000 })
                filings.append(InboxFiling(inboxId: id, message: record))
                pending.append(.message(expireTimer: content.expireTimer, author: sender))
            case .receipt(let read, let ids) where fromSelf:
                // Another device of this account read these messages of `destination`.
                filings.append(InboxFiling(inboxId: id, receipt: read ? (ids, .seen) : nil, receiptAbout: conversation))
                pending.append(read ? .event(.readElsewhere(conversation: conversation, messageIds: ids)) : .nothing)
            case .receipt(let read, let ids):
                filings.append(InboxFiling(inboxId: id, receipt: (ids, read ? .read : .delivered)))
                pending.append(.event(.receipt(in: conversation, from: sender, read: read, messageIds: ids)))
            case .trustDecision(let address, let key, let state):
                filings.append(InboxFiling(inboxId: id))
                // Another device's decision about an account; text that names none is about no contact.
                let about = try? AccountAddress(address)
                pending.append(fromSelf ? about.map { .trust(address: $0, accountKey: key, state: state) } ?? .nothing : .nothing)
            case .groupName, .groupInfoKey:
                // Meaningful only inside a group's MLS message; over 1:1 it names nothing.
                filings.append(InboxFiling(inboxId: id))
                pending.append(.nothing)
            case .groupInfoKeyRequest(let group):
                // Answered after the drain, if the sending device has a leaf in this device's tree of the group.
                filings.append(InboxFiling(inboxId: id))
                pending.append(.groupKeyRequest(from: received.sender, group: group))
            case .groupInfoKeyAnswer(let group, let epoch, let key):
                filings.append(InboxFiling(inboxId: id))
                pending.append(.groupKeyAnswer(from: received.sender, group: group, epoch: epoch, key: key))
            case .deviceReady:
                // Another device of this account is ready for its groups; from anyone else it means nothing.
                filings.append(InboxFiling(inboxId: id))
                pending.append(fromSelf ? .ownDeviceReady(received.sender.deviceId) : .nothing)
            case .typing(let started):
                filings.append(InboxFiling(inboxId: id))
                pending.append(fromSelf ? .nothing : .event(.typing(in: conversation, from: sender, started: started)))
            case .reaction, .edit, .delete:
                // Applied to the message it names only when that message is the sender's to change (an edit
                // or delete) and in this conversation; the store refuses anything else.
                let action = MessageAction(content: content, actor: sender, conversation: conversation)
                filings.append(InboxFiling(inboxId: id, action: action))
                pending.append(action.map { .action($0) } ?? .nothing)
            case .disappearingTimer(let seconds):
                // From the peer, or from another device of this account (then about `destination`).
                filings.append(InboxFiling(inboxId: id))
                pending.append(.timer(conversation: conversation, seconds: seconds, author: sender))
            }
        }
        return (filings, pending)
    }

    /// The events of filed messages (`stored`: what `EncryptedStore.file` returned for each).
    private func events(_ pending: [FilingOutcome], stored: [MessageRecord?]) throws -> [EngineEvent] {
        var events: [EngineEvent] = []
        for (kind, record) in zip(pending, stored) {
            switch kind {
            case .message(let timer, let author):
                guard let record else { break }
                events.append(.message(record))
                events += try adoptTimerOfMessage(timer, in: record.conversation, from: author)
            case .timer(let conversation, let seconds, let author):
                events += try adoptTimer(seconds, in: conversation, by: author).events
            case .action(let action): if let record { events.append(.messageChanged(record, action)) }
            case .event(let event): events.append(event)
            case .unreadable(let sender):
                if let event = try recordUndecryptable(ProtocolError.malformed("unreadable content"), sender: sender) { events.append(event) }
            case .trust(let address, let key, let state):
                if let event = try applyTrustDecision(address: address, accountKey: key, state: state) { events.append(event) }
            case .ownDeviceReady(let deviceId): ownDeviceIsReady(deviceId)
            case .groupKeyRequest(let device, let group): groupKeyRequests.append((device, group))
            case .groupKeyAnswer(let device, let group, let epoch, let key): adoptAnsweredKey(from: device, group: group, epoch: epoch, key: key)
            case .nothing: break
            }
        }
        return events
    }

    /// Records, in the sender's conversation, that a message could not be read, so the user sees the gap
    /// instead of losing it silently — when the sender is known for sure: `sender` (a session decrypted it),
    /// or a certificate signed by the account key this device holds for the address it names. Anything else
    /// (an envelope that does not open, a certificate under a key the sender's relay did not confirm) anyone
    /// could have sent: nothing is recorded, and nil tells the caller to count it as discarded.
    private func recordUndecryptable(_ error: any Error, envelope: [UInt8]? = nil, sender: AccountAddress? = nil) throws -> EngineEvent? {
        guard let from = try sender ?? envelope.flatMap({ try vouchedSender(of: $0) }) else { return nil }
        let reason = String(describing: error)
        let now = clock.nowMilliseconds()
        let record = MessageRecord(conversation: .direct(from), direction: .incoming,
                                   sender: DeviceAddress(address: from.description, deviceId: 0),
                                   clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now,
                                   text: "A message could not be decrypted: \(reason)", state: .failed)
        try store.insertMessages([record])
        return .undecryptable(from: from, reason: reason)
    }

    /// The address an envelope's sender certificate names, if the certificate is signed by the account key
    /// this device holds for that address (this account's own, or a contact's, as its relay published it).
    private func vouchedSender(of envelope: [UInt8]) throws -> AccountAddress? {
        guard let certificate = try? SealedSender.open(envelope, identity: account.device).certificate,
              let address = try? AccountAddress(certificate.address) else { return nil }
        let known = address == ownAddress
            ? account.accountKey.publicKey : try store.contact(address)?.account.accountKey
        guard known == certificate.accountKey, (try? certificate.verify(now: 0)) != nil else { return nil }
        return address
    }

    /// Delivery receipts go to the senders of 1:1 messages only: a group's message is not answered by one
    /// (PROTOCOL.md §17.7: in a group, a receipt is a group message every member decrypts, so only read
    /// receipts are sent there, as the user reads).
    private func sendDeliveryReceipts(for events: [EngineEvent]) async throws {
        var bySender: [AccountAddress: [[UInt8]]] = [:]
        for case .message(let record) in events where record.direction == .incoming && record.conversation.peer != nil {
            guard let sender = try? record.sender.account else { continue }
            bySender[sender, default: []].append(record.clientMessageId)
        }
        try await sendReceipts(bySender)
    }

    /// At most this many ids per receipt: a receipt for a whole drained backlog must still fit in one
    /// envelope (and the content's 16-bit count).
    static let receiptIdsPerContent = 500

    /// Receipts to several senders are sent at once: encrypted and committed together, and posted in
    /// parallel by the outbox drain.
    private func sendReceipts(_ bySender: [AccountAddress: [[UInt8]]]) async throws {
        await withTaskGroup(of: Void.self) { group in
            for (sender, ids) in bySender {
                group.addTask {
                    for start in stride(from: 0, to: ids.count, by: Self.receiptIdsPerContent) {
                        let chunk = Array(ids[start..<min(ids.count, start + Self.receiptIdsPerContent)])
                        try? await self.sendReceipt(to: sender, read: false, messageIds: chunk)
                    }
                }
            }
        }
    }

    /// How long the push connection gathers delivery receipts before sending them: under a stream of
    /// messages one receipt then covers many, instead of one receipt (a send of its own, and a receive at
    /// the other end) per drain. While the mailbox is still being drained, gathering goes on in such steps
    /// up to `receiptGatheringLimit`: a steady stream then costs a few receipts a second, not one per page.
    private static let receiptGathering: Duration = .milliseconds(10)
    private static let receiptGatheringLimit: Duration = .milliseconds(100)

    /// Queues delivery receipts for what a drain of the push connection stored (see `wake`), page by page.
    private func queueDeliveryReceipts(for events: [EngineEvent]) {
        for case .message(let record) in events where record.direction == .incoming && record.conversation.peer != nil {
            guard let sender = try? record.sender.account else { continue }
            pendingReceipts[sender, default: []].append(record.clientMessageId)
        }
        guard !pendingReceipts.isEmpty, receiptSender == nil else { return }
        receiptSender = Task {
            while !pendingReceipts.isEmpty {
                var waited: Duration = .zero
                repeat {
                    try? await Task.sleep(for: Self.receiptGathering)
                    waited += Self.receiptGathering
                } while wakeDrain != nil && waited < Self.receiptGatheringLimit && !Task.isCancelled
                let due = pendingReceipts
                pendingReceipts = [:]
                try? await sendReceipts(due)
            }
            receiptSender = nil
        }
    }

    /// A wake-up from the push channel. Drains the mailbox — or, if a drain is running, makes it drain
    /// once more when it is done: wake-ups that arrive during a drain cost one more fetch, not one each.
    /// The drain streams (it goes on while pages keep coming); delivery receipts for each stored page are
    /// gathered for a moment and sent apart from it (`queueDeliveryReceipts`), also when the drain later fails.
    func wake() {
        if wakeDrain != nil {
            drainAgain = true
            return
        }
        wakeDrain = Task {
            repeat {
                drainAgain = false
                do {
                    try await drainMailbox(streaming: true) { queueDeliveryReceipts(for: $0) }
                    try? store.checkpoint()
                    await tendGroupsAfterDrain()
                } catch {
                    // What was not stored stays on the relay and comes again with the next wake; the
                    // front ends say why meanwhile (a full disk), rather than going quiet.
                    if let problem = Self.receiveProblem(error) { emit(.receiveFailed(problem)) }
                }
            } while drainAgain && !Task.isCancelled
            wakeDrain = nil
        }
    }
}

/// A message whose sender's account key could not be fetched from the sender's relay yet: held in the
/// mailbox, unopened, until it can be.
struct UnverifiedSender: Error {
    let address: AccountAddress
}

/// A message from an account that is not a contact and that the administrator's policy does not admit as
/// one: dropped unread (acknowledged), and announced.
struct RefusedStranger: Error {
    let address: AccountAddress
    let reason: String
}

/// What a filed message tells the user, decided before filing (`Engine.filingPlan`) and reported after.
enum FilingOutcome: Sendable {
    /// A message, sent under `expireTimer` by `author` (the conversation adopts a timer that differs).
    case message(expireTimer: UInt32?, author: AccountAddress)
    /// A change of a conversation's disappearing-message timer.
    case timer(conversation: ConversationId, seconds: UInt32, author: AccountAddress)
    /// A reaction, edit or delete: an event once the store applied it.
    case action(MessageAction)
    case event(EngineEvent)
    case unreadable(sender: AccountAddress?)
    case trust(address: AccountAddress, accountKey: [UInt8], state: UInt8)
    /// This account's device `deviceId` is ready to be added to its groups (PROTOCOL.md §17.8).
    case ownDeviceReady(UInt32)
    /// A device asks for a group's current GroupInfo key (PROTOCOL.md §17.9).
    case groupKeyRequest(from: DeviceAddress, group: GroupId)
    /// A member's answer to this device's request.
    case groupKeyAnswer(from: DeviceAddress, group: GroupId, epoch: UInt64, key: [UInt8])
    case nothing
}

extension Engine {
    /// What follows every drain, by receivePending or a push wake: this account's devices that are not in its
    /// groups yet (just linked) join them, one with no KeyPackage yet at a later drain (PROTOCOL.md §17.8), and
    /// the leave requests the drain brought are committed.
    func tendGroupsAfterDrain() async {
        await keepOwnDevicesInGroups()
        try? await commitLeaves()
        await answerGroupKeyRequests()
        await rejoinGroupsWithAnsweredKeys()
    }
}
