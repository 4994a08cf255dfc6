import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// What can go wrong between this device and the relay, in words for the person at the keyboard.
/// Which failure each case is (and so its exit status and JSON-RPC code) is in `ErrorCategory`.
public enum ClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The relay answered with an error status.
    case relay(status: Int, code: String, message: String)
    case deviceMismatch(DeviceMismatch)
    case rateLimited
    /// The relay could not be reached (connection refused, DNS, TLS, timeout).
    case network(String)
    case insecureTransport(host: String)
    case noAccount
    case accountExists(String)
    case unknownContact(AccountAddress)
    case identityChanged(AccountAddress)
    case invalidAddress(String)
    case malformedResponse(String)
    /// A local file could not be read or written (attachments).
    case file(String)
    case noAttachment
    case unknownDevice(UInt32)
    case timedOut(String)
    case deviceRevoked(DeviceAddress)
    /// A message longer than one envelope may be: `bytes` of text where at most `limit` fit.
    case messageTooLarge(bytes: Int, limit: Int)
    /// The relay answered 507: it is short of disk space, or (`mailboxFull`) the recipient's mailbox is full.
    case relayOutOfSpace(mailboxFull: Bool)
    /// Only a failed message can be sent again or deleted.
    case notFailed
    /// Another chat window, daemon or `parley receive` runs on this home (`HomeLock`): which one, if known.
    case homeInUse(String?)
    /// The contact is blocked: nothing is sent to them until they are unblocked.
    case blocked(AccountAddress)
    /// Keys are rotated only with an empty outbox: what waits there was sealed with the old keys.
    case outboxNotEmpty(Int)
    /// A group commit or send for an epoch the group has left: another member's commit won it, and the
    /// group is at `current` (PROTOCOL.md §17.2). The engine catches up and tries again.
    case epochConflict(current: UInt64)
    /// This device is in no group of that id (never was, left it, or was removed).
    case unknownGroup(String)
    /// Asked of a group's conversation what only a direct one has (a read receipt to one peer, say).
    case notDirect(GroupId)
    /// None of the account's devices has a KeyPackage on its relay: it cannot be added to a group yet.
    case noKeyPackages(AccountAddress)
    /// The account (or accounts) named is not in the group.
    case notAMember(String)

    public var description: String {
        switch self {
        case .relay(let status, _, let message): "the relay refused the request (\(status)): \(message)"
        case .deviceMismatch: "the recipient's device list changed"
        case .rateLimited: "the relay is rate limiting this client; try again shortly"
        case .network(let detail): "cannot reach the relay: \(detail)"
        case .insecureTransport(let host): "refusing plain http to \(host), which is not a loopback address (pass --insecure to allow it)"
        case .noAccount: "no account here yet; run `parley init NAME@HOST:PORT` first"
        case .accountExists(let store): "this home already holds an account (\(store)); choose another --home"
        case .unknownContact(let address): "\(address) is not a contact; add it with `parley add-contact \(address)`"
        case .identityChanged(let address): "the identity key of \(address) has changed; sending stops until you verify or accept the new key"
        case .invalidAddress(let detail): detail
        case .malformedResponse(let detail): "the relay sent a malformed response: \(detail)"
        case .file(let detail): detail
        case .noAttachment: "that message has no attachment"
        case .unknownDevice(let id): "this account has no device #\(id); see `parley devices`"
        case .timedOut(let detail): detail
        case .messageTooLarge(let bytes, let limit):
            "the message is \(bytes) bytes long; at most \(limit) bytes of text fit in one message "
                + "(send longer text as a file); nothing was sent or saved"
        case .relayOutOfSpace(let mailboxFull):
            mailboxFull ? "the recipient's mailbox on the relay is full; your message waits in the outbox"
                        : "the relay is out of space; your message waits in the outbox"
        case .notFailed: "that message has not failed; only failed messages can be sent again or deleted"
        case .blocked(let address):
            "\(address) is blocked; nothing was sent (unblock with `parley unblock \(address)` or /unblock)"
        case .outboxNotEmpty(let count):
            "\(count) message\(count == 1 ? "" : "s") still wait\(count == 1 ? "s" : "") in the outbox, sealed with the current keys; "
                + "connect to the relay so they go (or delete the failed ones), then rotate again: nothing was changed"
        case .epochConflict(let current): "the group moved on to epoch \(current) before this change reached the relay"
        case .unknownGroup(let id): "this device is in no group \(id); see `parley group list`"
        case .noKeyPackages(let address):
            "\(address) cannot be added to a group yet: none of their devices has published a KeyPackage (it happens when parley runs there)"
        case .notAMember(let who): "\(who) is not in the group"
        case .notDirect(let id): "group:\(id.hex) is a group's conversation; this works only in a conversation with one contact"
        case .homeInUse(let holder):
            "parley is already running on this home (\(holder ?? "another process")); use that one, or quit it first"
        case .deviceRevoked(let device): "this device (#\(device.deviceId)) is no longer a device of \(device.address): it was revoked from another device, or the account was restored from a backup elsewhere (to use this machine again, `parley link` it into a new home)"
        }
    }

    /// Whether the outbox should try the same send again later: the relay could not be reached, was short
    /// of space (507) or busy (5xx, 408, 429), or the token had expired.
    public var isWorthRetrying: Bool {
        switch self {
        case .network, .timedOut, .rateLimited, .relayOutOfSpace: true
        case .relay(let status, _, _): !isPermanentRefusal
        default: false
        }
    }

    /// A refusal the relay will repeat however often the request is sent: a 4xx other than 401 (the token
    /// expired), 408 (timeout) and 429 (rate limit). The outbox gives such a message up (it is marked failed)
    /// instead of letting it hold back every later one; 5xx, 507 included, is worth retrying.
    public var isPermanentRefusal: Bool {
        guard case .relay(let status, _, _) = self else { return false }
        return (400..<500).contains(status) && ![401, 408, 429].contains(status)
    }
}
