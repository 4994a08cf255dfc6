import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// The outbox drain: batches posted in all-or-nothing requests per recipient account (several batches to
/// one account share a request), re-encrypted when a device list changed, and each send told how its
/// batch ended.
extension Engine {
    /// Posts every outbox batch in all-or-nothing requests per recipient account. A batch the
    /// relay refuses because the recipient's device list changed is encrypted again for the new list.
    /// Network failures leave the outbox as it is and throw.
    public func flushOutbox() async throws {
        try await drainOutbox().value
    }

    /// Waits until the outbox drain has dealt with `batch` — posted every envelope of it, or given up on
    /// it — rather than for the whole outbox, which under steady sending may never be empty.
    func flush(batch: [UInt8]) async throws -> MessageRecord? {
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
        var alone: Set<[UInt8]> = []
        var stopped: AccountAddress?
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
                    try await post(entries, round: &round, attempts: &attempts, alone: &alone, stopped: &stopped)
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
        var stopped: [[UInt8]: AccountAddress] = [:]
        /// Batches the relay refused for good (see `ClientError.isPermanentRefusal`), with its answer.
        var refused: [[UInt8]: ClientError] = [:]
    }

    /// Posts the groups of `entries`: each group is one batch's envelopes to one account. Consecutive
    /// groups to the same account, encrypted for the same devices, travel in one request (up to
    /// `sendMessages` of them and about `sendBytes` of envelopes), which the relay stores all or none.
    /// A batch the relay refuses for good is given up (failed), so it never holds back the ones after it;
    /// when it shared its request with others, each of them goes again in a request of its own (`alone`).
    private func post(_ entries: [OutboxEntry], round: inout OutboxRound, attempts: inout [[UInt8]: Int],
                      alone: inout Set<[UInt8]>, stopped: inout AccountAddress?) async throws {
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
        // Requests to different accounts go out at once (the relay commits them together); those to one
        // account one after another, in outbox order.
        let requests = Self.requests(of: groups, alone: alone)
        var lists: [AccountAddress: SignedDeviceList?] = [:]
        var calls: [PreparedSend] = []
        for request in requests {
            // One account per request (`requests(of:)`): its devices' keys come from its device list.
            let address = try request[0][0].envelope.recipient.account
            if lists[address] == nil { lists[address] = try deviceList(of: address) }
            var messages: [OutgoingMessage] = []
            for entry in request.joined() {
                let recipient = entry.envelope.recipient
                let key = lists[address]??.device(recipient.deviceId)?.identityKey.bytes ?? []
                messages.append(OutgoingMessage(deviceId: recipient.deviceId, deviceKey: Base64Bytes(key),
                                                envelope: Base64Bytes(entry.envelope.envelope)))
            }
            let (token, accessKey) = try await credentials(for: address)
            calls.append(PreparedSend(address: address, request: SendRequest(messages: messages), token: token, accessKey: accessKey,
                                      relay: try peerRelay(for: address)))
        }
        let outcomes = await Self.perform(calls)
        var firstError: (any Error)?
        for ((request, outcome), call) in zip(zip(requests, outcomes), calls) {
            let address = call.address
            switch outcome {
            case .failed(ClientError.relay(status: 401, let code, let message)):
                if call.accessKey != nil {
                    // The recipient replaced its delivery access key (a restored account): forget the old one;
                    // the entries stay in the outbox and the next round sends them without it.
                    try store.setDeliveryAccessKey(nil, of: address)
                } else {
                    token = nil
                    firstError = firstError ?? ClientError.relay(status: 401, code: code, message: message)
                }
            case .skipped:
                continue    // still in the outbox: the next round posts it
            case .sent:
                for group in request {
                    round.done += group.map(\.id)
                    round.open[group[0].envelope.batch]! -= 1
                    // Copies to this account's own devices do not make a message sent, but a note to self
                    // has no other recipient.
                    if address != ownAddress || Self.isNoteToSelf(group[0], of: address) { round.sent.append(group[0].envelope.batch) }
                }
            case .failed(ClientError.deviceMismatch):
                do {
                    try await refreshDeviceList(address)
                    for group in request { try await reencrypt(group, attempts: &attempts, round: &round, stopped: &stopped) }
                } catch {
                    firstError = firstError ?? error
                }
            case .failed(let error as ClientError) where error.isPermanentRefusal:
                if request.count > 1 {
                    for group in request { alone.insert(group[0].envelope.batch) }
                    continue
                }
                let group = request[0], batch = group[0].envelope.batch
                round.done += group.map(\.id)
                round.failed.append(batch)
                round.refused[batch] = error
                round.open[batch]! -= 1
            case .failed(let error):
                if case ClientError.relay(status: 401, _, _) = error { token = nil }    // renewed on the next try
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// Whether `entry` carries a content whose conversation is this account's own (a note to self).
    private static func isNoteToSelf(_ entry: OutboxEntry, of ownAddress: AccountAddress) -> Bool {
        (try? Content(decoding: entry.content))?.destination == ownAddress.description
    }

    private struct PreparedSend: Sendable {
        let address: AccountAddress
        let request: SendRequest
        let token: String?
        let accessKey: [UInt8]?
        let relay: any RelayTransport
    }

    /// How a send to `address` shows the relay it may deliver (PROTOCOL.md §13.1): copies to this account's
    /// own devices with this device's token; to a contact, sealed with the delivery access key it gave us;
    /// without that key, with this device's token to an account on this device's own relay (which charges
    /// the sender), and with neither to another relay (whose small budget for strangers pays).
    private func credentials(for address: AccountAddress) async throws -> (token: String?, accessKey: [UInt8]?) {
        if address == ownAddress { return (try await sessionToken(), nil) }
        if let key = try store.deliveryAccessKey(of: address) { return (nil, key) }
        if address.relay == ownAddress.relay { return (try await sessionToken(), nil) }
        return (nil, nil)
    }

    private enum SendOutcome: Sendable {
        case sent
        case failed(any Error)
        /// Not tried: an earlier send to the same account failed.
        case skipped
    }

    /// Posts the sends, accounts in parallel, each account's sends in order; after a send fails, the
    /// account's later ones wait in the outbox for the next round, so they never overtake it.
    private static func perform(_ calls: [PreparedSend]) async -> [SendOutcome] {
        var byAddress: [AccountAddress: [Int]] = [:]
        for (i, call) in calls.enumerated() { byAddress[call.address, default: []].append(i) }
        var outcomes = [SendOutcome](repeating: .skipped, count: calls.count)
        // One account (the usual case): no task group to hop through.
        if byAddress.count == 1 {
            for (i, outcome) in await inOrder(calls, Array(calls.indices)) { outcomes[i] = outcome }
            return outcomes
        }
        await withTaskGroup(of: [(Int, SendOutcome)].self) { group in
            for indices in byAddress.values { group.addTask { await inOrder(calls, indices) } }
            for await done in group { for (i, outcome) in done { outcomes[i] = outcome } }
        }
        return outcomes
    }

    /// One account's sends, in order, up to the first that fails.
    private static func inOrder(_ calls: [PreparedSend], _ indices: [Int]) async -> [(Int, SendOutcome)] {
        var done: [(Int, SendOutcome)] = []
        for i in indices {
            let call = calls[i]
            do {
                try await call.relay.send(call.request, to: call.address.description, token: call.token, accessKey: call.accessKey)
                done.append((i, .sent))
            } catch {
                done.append((i, .failed(error)))
                break
            }
        }
        return done
    }

    /// Most messages, and about the most envelope bytes, one send request carries (the relay takes 64).
    static let sendMessages = 64
    static let sendBytes = 1 << 20

    /// Splits the groups into requests: per account in outbox order, consecutive groups for the same
    /// devices together, within `sendMessages` and `sendBytes`; the batches in `alone` each in a request of its own.
    static func requests(of groups: [[OutboxEntry]], alone: Set<[UInt8]> = []) -> [[[OutboxEntry]]] {
        var requests: [[[OutboxEntry]]] = []
        var open: [String: Int] = [:]
        var bytes: [Int] = []
        for group in groups {
            let address = group[0].envelope.recipient.address
            let size = group.reduce(0) { $0 + $1.envelope.envelope.count }
            if let i = open[address], requests[i].count < sendMessages, bytes[i] + size <= sendBytes,
               devices(of: requests[i][0]) == devices(of: group),
               !alone.contains(group[0].envelope.batch), !alone.contains(requests[i][0][0].envelope.batch) {
                requests[i].append(group)
                bytes[i] += size
            } else {
                open[address] = requests.count
                requests.append([group])
                bytes.append(size)
            }
        }
        return requests
    }

    private static func devices(of group: [OutboxEntry]) -> [UInt32] { group.map(\.envelope.recipient.deviceId).sorted() }

    /// The relay refused a batch because the recipient's device list changed (the list is refreshed):
    /// encrypts it again for the new list, or gives up on it after three tries or when the contact's new
    /// key is not trusted.
    private func reencrypt(_ group: [OutboxEntry], attempts: inout [[UInt8]: Int], round: inout OutboxRound, stopped: inout AccountAddress?) async throws {
        let first = group[0]
        let address = try first.envelope.recipient.account
        let tries = attempts[first.envelope.batch, default: 0] + 1
        attempts[first.envelope.batch] = tries
        guard tries <= 3, let content = try? Content(decoding: first.content) else {
            round.done += group.map(\.id)
            round.failed.append(first.envelope.batch)
            round.open[first.envelope.batch]! -= 1
            return
        }
        try store.removeFromOutbox(group.map(\.id))
        // The refreshed list may carry a new account key the trust policy did not accept (a verified
        // contact's key changed): nothing is encrypted to it until the user verifies or trusts it.
        if address != ownAddress, try store.contact(address)?.trust.allowsSending == false {
            round.failed.append(first.envelope.batch)
            round.stopped[first.envelope.batch] = address
            round.open[first.envelope.batch]! -= 1
            stopped = address
            return
        }
        _ = try await manager.send(content, to: address, includeOwnDevices: false)
        round.reencrypted.insert(first.envelope.batch)
        round.open[first.envelope.batch]! -= 1
    }

    private struct GroupKey: Hashable {
        let batch: [UInt8]
        let address: String
    }

    /// One commit for the round: posted entries leave the outbox and their messages become sent (failed
    /// ones failed); then the sends waiting for a batch the round finished are resumed.
    private func completeRound(_ round: OutboxRound) throws {
        guard !round.done.isEmpty || !round.failed.isEmpty || !round.seen.isEmpty else { return }
        let sent = try store.completeOutbox(round.done, sentBy: ownAddress, batches: round.sent)
        if !round.failed.isEmpty { try store.advanceState(ofMessagesSentBy: ownAddress, ids: round.failed, to: .failed) }
        for record in sent { emit(.message(record)) }
        // Shown as failed in the conversation, where the user can send it again or delete it.
        for batch in round.refused.keys where !round.sent.contains(batch) {
            if let record = try store.message(sentBy: ownAddress, clientMessageId: batch) { emit(.message(record)) }
        }
        for batch in round.seen where !round.reencrypted.contains(batch) && round.open[batch, default: 0] == 0 {
            let refusal = round.sent.contains(batch) ? nil : round.refused[batch]
            let error = round.stopped[batch].map { ClientError.identityChanged($0) } ?? refusal
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
        if let error = error as? ClientError, error.isWorthRetrying {
            scheduleOutboxRetry()
        } else if error == nil {
            outboxRetryDelay = Self.firstOutboxRetry
        }
        let waiters = batchWaiters
        batchWaiters = [:]
        for waiter in waiters.values.joined() {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    static let firstOutboxRetry: Duration = .seconds(1)
    static let lastOutboxRetry: Duration = .seconds(60)

    /// Drains the outbox again after `outboxRetryDelay` (±25%, so clients that failed together do not come
    /// back together), and doubles the delay; a drain that succeeds resets it. Only while `runConnection`
    /// runs: a one-shot command leaves the outbox to the next command.
    private func scheduleOutboxRetry() {
        guard retriesOutbox, outboxRetry == nil else { return }
        let delay = outboxRetryDelay * Double.random(in: 0.75...1.25)
        outboxRetryDelay = min(outboxRetryDelay * 2, Self.lastOutboxRetry)
        outboxRetry = Task {
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            outboxRetry = nil
            try? await flushOutbox()
        }
    }
}
