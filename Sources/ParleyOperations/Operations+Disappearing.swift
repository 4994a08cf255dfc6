import ParleyClient
import ParleyProtocol
import ParleyStore

/// `parley disappear`, the daemon's `updateContact` with `expiration`, `/disappear` and the retention
/// setting: one operation each, checked against the policy's `min_disappearing` and `max_retention`.
extension Operations {
    /// A timer as the user writes it: "off" (nil), or a duration "30s", "10m", "1h", "7d", "4w" (at most
    /// 4294967295 seconds, the wire's u32).
    public static func timer(_ text: String) throws -> UInt32? {
        if text == "off" || text == "0" { return nil }
        guard let seconds = DurationText.seconds(text), seconds > 0, seconds <= UInt64(UInt32.max) else {
            throw OperationError.invalidInput("'\(PeerText.forTerminal(text))' is not a timer: off, or a duration such as 30s, 10m, 1h, 7d or 4w")
        }
        return UInt32(seconds)
    }

    /// Sets the disappearing-message timer of the conversation with `contact` on both sides (nil: off).
    public func setDisappearing(_ contact: AccountAddress, seconds: UInt32?) async throws -> DisappearingResult {
        try policy.checkDisappearing(seconds.map(UInt64.init))
        try await engine.setDisappearingTimer(seconds, with: contact)
        return DisappearingResult(contact: contact.description, seconds: seconds)
    }

    /// The timer of the conversation with `contact`, as this device applies it.
    public func disappearing(_ contact: AccountAddress) throws -> DisappearingResult {
        DisappearingResult(contact: contact.description, seconds: try engine.effectiveTimer(of: .direct(contact)))
    }

    /// Sets the group's disappearing-message timer for every member (nil: off); any member may.
    public func setDisappearing(inGroup id: GroupId, seconds: UInt32?) async throws -> DisappearingResult {
        try policy.checkDisappearing(seconds.map(UInt64.init))
        try checkPolicyAllowsSending(toGroup: id)
        try await engine.setDisappearingTimer(seconds, inGroup: id)
        return DisappearingResult(contact: ConversationId.group(id).description, seconds: seconds)
    }

    /// The group's timer, as this device applies it.
    public func disappearing(inGroup id: GroupId) throws -> DisappearingResult {
        _ = try engine.group(id)
        return DisappearingResult(contact: ConversationId.group(id).description, seconds: try engine.effectiveTimer(of: .group(id)))
    }

    /// Keeps messages on this device `seconds` (nil: for ever); older ones are deleted now and from then on.
    public func setRetention(_ seconds: UInt64?) async throws {
        try policy.checkRetention(seconds)
        try await engine.setRetention(seconds)
    }
}

/// A conversation's disappearing-message timer.
public struct DisappearingResult: Codable, Sendable, Equatable {
    /// The contact's address, or for a group `group:` and its id in hex.
    public let contact: String
    /// Seconds; 0: off (signal-cli's `expiration`).
    public let expiration: UInt32
    /// "1h", or "off".
    public let timer: String

    public init(contact: String, seconds: UInt32?) {
        self.contact = contact
        expiration = seconds ?? 0
        timer = seconds.map { DurationText.shown(UInt64($0)) } ?? "off"
    }
}

extension Policy {
    /// The limits the engine applies to every conversation and to retention.
    public var expiryLimits: ExpiryLimits {
        ExpiryLimits(longestTimer: minDisappearing.map { UInt32(clamping: $0) }, longestRetention: maxRetention)
    }

    /// A timer of `seconds` (nil: off) under `min_disappearing`: messages must disappear, at least that soon.
    public func checkDisappearing(_ seconds: UInt64?) throws(PolicyError) {
        if let broken { throw broken }
        guard let limit = minDisappearing else { return }
        let shown = Self.shownDuration(limit)
        guard let seconds else {
            throw .forbidden("disappearing messages cannot be turned off; they disappear after \(shown) at the longest (min_disappearing)")
        }
        if seconds > limit {
            throw .forbidden("a timer of \(Self.shownDuration(seconds)) is longer than \(shown), the longest allowed (min_disappearing)")
        }
    }

    /// A retention of `seconds` (nil: for ever) under `max_retention`.
    public func checkRetention(_ seconds: UInt64?) throws(PolicyError) {
        if let broken { throw broken }
        guard let limit = maxRetention else { return }
        let shown = Self.shownDuration(limit)
        guard let seconds else { throw .forbidden("messages cannot be kept for ever; they are kept \(shown) at the longest (max_retention)") }
        if seconds > limit {
            throw .forbidden("a retention of \(Self.shownDuration(seconds)) is longer than \(shown), the longest allowed (max_retention)")
        }
    }
}
