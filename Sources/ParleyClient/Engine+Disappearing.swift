import Foundation
import ParleyProtocol
import ParleyStore

/// What an administrator's policy allows (parley-policy(5)): the longest disappearing-message timer
/// (`min_disappearing`: a conversation without a timer, or with a longer one, still loses its messages on
/// this device after it) and the longest a message is kept (`max_retention`). Seconds; nil: no limit.
public struct ExpiryLimits: Sendable, Equatable {
    public var longestTimer: UInt32?
    public var longestRetention: UInt64?

    public init(longestTimer: UInt32? = nil, longestRetention: UInt64? = nil) {
        self.longestTimer = longestTimer
        self.longestRetention = longestRetention
    }

    /// `timer` (nil: off) as this device applies it: never longer than the policy allows.
    public func applied(to timer: UInt32?) -> UInt32? {
        guard let longestTimer else { return timer }
        return min(timer ?? longestTimer, longestTimer)
    }
}

/// Durations as Parley writes them: "30s", "10m", "1h", "7d", "4w" (the largest unit that divides them).
public enum DurationText {
    public static func seconds(_ text: String) -> UInt64? {
        guard let unit = text.last, let count = UInt64(text.dropLast()) else { return nil }
        let scale: UInt64? = switch unit {
        case "s": 1
        case "m": 60
        case "h": 3600
        case "d": 86_400
        case "w": 604_800
        default: nil
        }
        guard let scale else { return nil }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: scale)
        return overflow ? nil : seconds
    }

    public static func shown(_ seconds: UInt64) -> String {
        for (unit, scale) in [("w", UInt64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds % scale == 0 && seconds > 0 {
            return "\(seconds / scale)\(unit)"
        }
        return "\(seconds)s"
    }
}

/// Disappearing messages (PROTOCOL.md §12, content type 9 and the expire-timer flag) and retention. A
/// conversation's timer is a setting either side changes; each message carries the timer it was sent
/// under, and every device deletes a message that long after it stored it (the sender's devices from the
/// send, the recipient's from arrival): at that time while an engine runs (`runExpiryTimer`), else when an
/// engine next opens the store (the sweep in `init`).
extension Engine {
    static func timerSetting(_ conversation: ConversationId) -> String { "disappearing." + conversation.destination }
    static let retentionSetting = "retention"

    /// The timer either side last set for `conversation` (seconds), or nil: off.
    public nonisolated func disappearingTimer(of conversation: ConversationId) throws(StoreError) -> UInt32? {
        try store.setting(Self.timerSetting(conversation)).flatMap { UInt32($0) }.flatMap { $0 == 0 ? nil : $0 }
    }

    /// The timer this device applies to `conversation`: the one set, shortened to the policy's limit.
    public nonisolated func effectiveTimer(of conversation: ConversationId) throws(StoreError) -> UInt32? {
        expiryLimits.applied(to: try disappearingTimer(of: conversation))
    }

    /// How long this device keeps messages (seconds; nil: for ever): the user's `retention` setting
    /// (the chat window stores config.toml's), shortened to the policy's limit.
    public nonisolated func effectiveRetention() throws(StoreError) -> UInt64? {
        let chosen = try store.setting(Self.retentionSetting).flatMap { UInt64($0) }
        guard let limit = expiryLimits.longestRetention else { return chosen }
        return min(chosen ?? limit, limit)
    }

    /// Keeps messages `seconds` (nil: for ever), on this device only; the next sweep applies it.
    public func setRetention(_ seconds: UInt64?) throws {
        try store.setSetting(Self.retentionSetting, seconds.map { String($0) })
        try sweepExpired()
        rescheduleExpiry()
    }

    /// Sets the timer of the conversation with `peer` (nil: off), tells the peer's devices and this
    /// account's other devices, and writes the notice into the conversation. The caller checks the policy.
    @discardableResult
    public func setDisappearingTimer(_ seconds: UInt32?, with peer: AccountAddress) async throws -> MessageRecord {
        try refuseIfBlocked(peer)
        if peer != ownAddress, try store.contact(peer) == nil { throw ClientError.unknownContact(peer) }
        let conversation = ConversationId.direct(peer)
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation,
                              body: .disappearingTimer(seconds: seconds ?? 0))
        let (notice, events) = try adoptTimer(seconds, in: conversation, by: ownAddress)
        for event in events { emit(event) }
        try await send(content, to: peer)
        return notice
    }

    /// Stores `seconds` as the timer of `conversation` and writes the notice; returns it and the events
    /// that tell the front ends.
    func adoptTimer(_ seconds: UInt32?, in conversation: ConversationId, by author: AccountAddress) throws
        -> (notice: MessageRecord, events: [EngineEvent]) {
        let seconds = seconds == 0 ? nil : seconds
        try store.setSetting(Self.timerSetting(conversation), seconds.map { String($0) })
        let who = author == ownAddress ? "You" : author.description
        let text = seconds.map { "\(who) set disappearing messages to \(DurationText.shown(UInt64($0)))" }
            ?? "\(who) turned disappearing messages off"
        let now = clock.nowMilliseconds()
        let record = MessageRecord(conversation: conversation, direction: .system, sender: DeviceAddress(address: author.description, deviceId: 0),
                                   clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now, text: text, state: .received)
        try store.insertMessages([record])
        let stored = try store.message(sentBy: author, clientMessageId: record.clientMessageId) ?? record
        return (stored, [.disappearingTimer(in: conversation, seconds: seconds, by: author), .message(stored)])
    }

    /// A message arrived under `timer`: when the conversation's timer differs (its change was lost, or the
    /// message crossed it), the message's own timer is adopted, as Signal does.
    func adoptTimerOfMessage(_ timer: UInt32?, in conversation: ConversationId, from author: AccountAddress) throws -> [EngineEvent] {
        guard try disappearingTimer(of: conversation) != timer else { return [] }
        return try adoptTimer(timer, in: conversation, by: author).events
    }

    /// The timer an outgoing message of `conversation` carries.
    func outgoingTimer(_ conversation: ConversationId) -> UInt32? { try? effectiveTimer(of: conversation) }

    /// Deletes what is due now: expired messages, and messages older than the retention. Tells the front
    /// ends which messages went. Returns them.
    @discardableResult
    public func sweepExpired() throws -> [MessageRecord] {
        let now = clock.nowMilliseconds()
        let cutoff = try effectiveRetention().map { now > $0 * 1000 ? now - $0 * 1000 : 0 }
        let deleted = try store.deleteExpiredMessages(now: now, receivedBefore: cutoff)
        var byConversation: [ConversationId: [[UInt8]]] = [:]
        var order: [ConversationId] = []
        for record in deleted {
            if byConversation[record.conversation] == nil { order.append(record.conversation) }
            byConversation[record.conversation, default: []].append(record.clientMessageId)
        }
        for conversation in order { emit(.expired(in: conversation, messageIds: byConversation[conversation]!)) }
        return deleted
    }

    /// Runs until cancelled: sweeps, then sleeps until the next message is due (at most a minute, so
    /// retention and a changed clock are looked at again). `rescheduleExpiry` wakes it early.
    public func runExpiryTimer() async {
        while !Task.isCancelled {
            _ = try? sweepExpired()
            let now = clock.nowMilliseconds()
            var wait: UInt64 = 60_000
            if let next = (try? store.nextExpiry()) ?? nil { wait = min(wait, next > now ? next - now : 0) }
            try? await Task.sleep(for: .milliseconds(max(wait, 10)))
        }
    }

    /// Starts the expiry timer (a front end that keeps running: the chat window, the daemon, `receive
    /// --follow`); `stopExpiryTimer` ends it.
    public func startExpiryTimer() {
        guard expiryTimer == nil else { return }
        expiryTimer = Task { await self.runExpiryTimer() }
    }

    public func stopExpiryTimer() {
        expiryTimer?.cancel()
        expiryTimer = nil
    }

    /// A message with a deletion time was stored: a running timer looks again at when to wake.
    func rescheduleExpiry() {
        guard let running = expiryTimer else { return }
        running.cancel()
        expiryTimer = Task { await self.runExpiryTimer() }
    }
}
