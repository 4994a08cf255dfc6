import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// What can go wrong between this device and the relay, in words for the person at the keyboard.
/// `exitCode` follows signal-cli's convention: 3 relay or network, 4 untrusted identity, 5 rate limited.
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
    case unknownContact(String)
    case identityChanged(String)
    case invalidAddress(String)
    case malformedResponse(String)
    /// A local file could not be read or written (attachments).
    case file(String)
    case noAttachment
    case unknownDevice(UInt32)
    case timedOut(String)
    case deviceRevoked(address: String, deviceId: UInt32)

    public var description: String {
        switch self {
        case .relay(let status, _, let message): "the relay refused the request (\(status)): \(message)"
        case .deviceMismatch: "the recipient's device list changed"
        case .rateLimited: "the relay is rate limiting this client; try again shortly"
        case .network(let detail): "cannot reach the relay: \(detail)"
        case .insecureTransport(let host): "refusing plain http to \(host), which is not a loopback address (pass --insecure to allow it)"
        case .noAccount: "no account here yet; run `parley init NAME@HOST:PORT` first"
        case .accountExists(let store): "this home already holds an account (\(store)); choose another --home"
        case .unknownContact(let address):
            (try? AccountAddress(address)) == nil
                ? "'\(address)' is not a contact's address (NAME@HOST[:PORT]); `parley contacts` lists them"
                : "\(address) is not a contact; add it with `parley add-contact \(address)`"
        case .identityChanged(let address): "the identity key of \(address) has changed; sending stops until you verify or accept the new key"
        case .invalidAddress(let detail): detail
        case .malformedResponse(let detail): "the relay sent a malformed response: \(detail)"
        case .file(let detail): detail
        case .noAttachment: "that message has no attachment"
        case .unknownDevice(let id): "this account has no device #\(id); see `parley devices`"
        case .timedOut(let detail): detail
        case .deviceRevoked(let address, let id): "this device (#\(id)) is no longer a device of \(address): it was revoked from another device, or the account was restored from a backup elsewhere (to use this machine again, `parley link` it into a new home)"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .rateLimited: 5
        case .identityChanged: 4
        case .noAccount, .accountExists, .unknownContact, .invalidAddress, .insecureTransport, .file, .noAttachment, .unknownDevice: 1
        default: 3
        }
    }
}
