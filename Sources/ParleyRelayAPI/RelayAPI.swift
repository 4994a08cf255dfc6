import Foundation

// The relay's HTTP API (documented in openapi/relay.yaml, which a test keeps in step with these types and
// the routes). JSON bodies; binary values are base64 strings; errors are `ErrorBody` with an HTTP status.

public enum RelayAPI {
    public static let version = "v1"
    /// What the relay pushes on the WebSocket: this text and nothing else, ever.
    public static let wakeToken = "wake"
    /// The label of the device-authentication signature (PROTOCOL.md §13).
    public static let authLabel = "parley.relay-auth.v1"
    /// WebSocket close code sent to a push connection displaced by a newer one for the same device.
    public static let closeConnectedElsewhere: UInt16 = 4409
    /// WebSocket close code sent to a push connection whose device left the account's device list or got a
    /// new key: its tokens are revoked, and its push connection ends with them.
    public static let closeRevoked: UInt16 = 4401
    /// The header that carries an attachment slot's upload secret on `PUT /v1/attachments/{id}` (in place
    /// of a device token: the relay keeps no uploader with a blob).
    public static let uploadSecretHeader = "Parley-Upload-Secret"
}

public struct ErrorBody: Codable, Sendable, Equatable {
    public let error: String
    public let message: String
    public init(error: String, message: String) {
        self.error = error
        self.message = message
    }
}

// MARK: Accounts

public struct RegisterRequest: Codable, Sendable {
    public let address: String
    public let accountKey: Base64Bytes
    public let deviceList: Base64Bytes
    public init(address: String, accountKey: Base64Bytes, deviceList: Base64Bytes) {
        self.address = address
        self.accountKey = accountKey
        self.deviceList = deviceList
    }
}

public struct AccountResponse: Codable, Sendable, Equatable {
    public let address: String
    public let accountKey: Base64Bytes
    public let deviceList: Base64Bytes
    /// The old account key's statement naming the current one (PROTOCOL.md §3.5), when the key changed.
    public let keyChange: Base64Bytes?
    public init(address: String, accountKey: Base64Bytes, deviceList: Base64Bytes, keyChange: Base64Bytes? = nil) {
        self.address = address
        self.accountKey = accountKey
        self.deviceList = deviceList
        self.keyChange = keyChange
    }
}

/// `PUT /v1/accounts/{address}/key`: a new account key, vouched for by the old key's statement naming it,
/// with a newer device list signed by the new key (PROTOCOL.md §3.5).
public struct AccountKeyChangeRequest: Codable, Sendable {
    public let keyChange: Base64Bytes
    public let deviceList: Base64Bytes
    public init(keyChange: Base64Bytes, deviceList: Base64Bytes) {
        self.keyChange = keyChange
        self.deviceList = deviceList
    }
}

public struct DeviceListUpdate: Codable, Sendable {
    public let deviceList: Base64Bytes
    public init(deviceList: Base64Bytes) { self.deviceList = deviceList }
}

/// `PUT /v1/delivery-access`: the verifier of the account's delivery access key (PROTOCOL.md §13.1).
public struct DeliveryAccessUpdate: Codable, Sendable {
    public let verifier: Base64Bytes
    public init(verifier: Base64Bytes) { self.verifier = verifier }
}

// MARK: Device authentication

public struct ChallengeRequest: Codable, Sendable {
    public let address: String
    public let deviceId: UInt32
    public init(address: String, deviceId: UInt32) {
        self.address = address
        self.deviceId = deviceId
    }
}

public struct ChallengeResponse: Codable, Sendable {
    public let challenge: Base64Bytes
    public let expiresAt: UInt64
    public init(challenge: Base64Bytes, expiresAt: UInt64) {
        self.challenge = challenge
        self.expiresAt = expiresAt
    }
}

public struct SessionRequest: Codable, Sendable {
    public let address: String
    public let deviceId: UInt32
    public let challenge: Base64Bytes
    public let signature: Base64Bytes
    public init(address: String, deviceId: UInt32, challenge: Base64Bytes, signature: Base64Bytes) {
        self.address = address
        self.deviceId = deviceId
        self.challenge = challenge
        self.signature = signature
    }
}

public struct SessionResponse: Codable, Sendable {
    public let token: String
    public let expiresAt: UInt64
    public init(token: String, expiresAt: UInt64) {
        self.token = token
        self.expiresAt = expiresAt
    }
}

/// The bytes a device signs to prove it holds its key: `label ‖ 0x00 ‖ challenge ‖ relay name`.
public func authenticationMessage(challenge: [UInt8], relayName: String) -> [UInt8] {
    Array(RelayAPI.authLabel.utf8) + [0] + challenge + Array(relayName.utf8)
}

// MARK: Prekeys

public struct SignedPreKeyEntry: Codable, Sendable, Equatable {
    public let id: UInt32
    public let key: Base64Bytes
    public let signature: Base64Bytes
    public init(id: UInt32, key: Base64Bytes, signature: Base64Bytes) {
        self.id = id
        self.key = key
        self.signature = signature
    }
}

public struct OneTimePreKeyEntry: Codable, Sendable, Equatable {
    public let id: UInt32
    public let key: Base64Bytes
    public init(id: UInt32, key: Base64Bytes) {
        self.id = id
        self.key = key
    }
}

public struct PreKeyUpload: Codable, Sendable {
    public let signedPreKey: SignedPreKeyEntry?
    public let lastResortPQPreKey: SignedPreKeyEntry?
    public let oneTimePreKeys: [OneTimePreKeyEntry]
    public let oneTimePQPreKeys: [SignedPreKeyEntry]
    public init(signedPreKey: SignedPreKeyEntry?, lastResortPQPreKey: SignedPreKeyEntry?,
                oneTimePreKeys: [OneTimePreKeyEntry], oneTimePQPreKeys: [SignedPreKeyEntry]) {
        self.signedPreKey = signedPreKey
        self.lastResortPQPreKey = lastResortPQPreKey
        self.oneTimePreKeys = oneTimePreKeys
        self.oneTimePQPreKeys = oneTimePQPreKeys
    }
}

public struct PreKeyCount: Codable, Sendable, Equatable {
    public let oneTimePreKeys: Int
    public let oneTimePQPreKeys: Int
    /// True when either count is below the refill threshold: the owner should upload more.
    public let low: Bool
    public init(oneTimePreKeys: Int, oneTimePQPreKeys: Int, low: Bool) {
        self.oneTimePreKeys = oneTimePreKeys
        self.oneTimePQPreKeys = oneTimePQPreKeys
        self.low = low
    }
}

public struct BundleResponse: Codable, Sendable {
    /// A PreKeyBundle (PROTOCOL.md §3.3).
    public let bundle: Base64Bytes
    public init(bundle: Base64Bytes) { self.bundle = bundle }
}

// MARK: Messages

public struct OutgoingMessage: Codable, Sendable, Equatable {
    public let deviceId: UInt32
    /// The recipient device's identity key as the sender knows it; a mismatch answers 410 (stale).
    public let deviceKey: Base64Bytes
    /// A sealed envelope (PROTOCOL.md §7).
    public let envelope: Base64Bytes
    public init(deviceId: UInt32, deviceKey: Base64Bytes, envelope: Base64Bytes) {
        self.deviceId = deviceId
        self.deviceKey = deviceKey
        self.envelope = envelope
    }
}

/// One envelope per device of the recipient account; stored for all of them or for none.
public struct SendRequest: Codable, Sendable {
    public let messages: [OutgoingMessage]
    public init(messages: [OutgoingMessage]) { self.messages = messages }
}

/// 409 (missing or extra devices) or 410 (stale devices): the sender fixes its list and retries.
public struct DeviceMismatch: Codable, Sendable, Equatable {
    public let missingDevices: [UInt32]
    public let extraDevices: [UInt32]
    public let staleDevices: [UInt32]
    public init(missingDevices: [UInt32], extraDevices: [UInt32], staleDevices: [UInt32]) {
        self.missingDevices = missingDevices
        self.extraDevices = extraDevices
        self.staleDevices = staleDevices
    }
}

public struct QueuedMessage: Codable, Sendable, Equatable {
    public let id: String
    public let envelope: Base64Bytes
    public let receivedAt: UInt64
    public init(id: String, envelope: Base64Bytes, receivedAt: UInt64) {
        self.id = id
        self.envelope = envelope
        self.receivedAt = receivedAt
    }
}

public struct FetchResponse: Codable, Sendable {
    public let messages: [QueuedMessage]
    /// More messages are queued beyond this page.
    public let more: Bool
    /// The device's one-time prekeys are running low.
    public let preKeysLow: Bool
    public init(messages: [QueuedMessage], more: Bool, preKeysLow: Bool) {
        self.messages = messages
        self.more = more
        self.preKeysLow = preKeysLow
    }
}

public struct AckRequest: Codable, Sendable {
    public let ids: [String]
    public init(ids: [String]) { self.ids = ids }
}

// MARK: Attachments

public struct AttachmentSlotRequest: Codable, Sendable {
    public let size: Int
    public init(size: Int) { self.size = size }
}

public struct AttachmentSlot: Codable, Sendable {
    public let id: String
    public let size: Int
    public let expiresAt: UInt64
    /// 32 random bytes in hex, sent back in the `Parley-Upload-Secret` header to fill the slot; the relay
    /// keeps only its SHA-256, not who asked for the slot.
    public let uploadSecret: String
    public init(id: String, size: Int, expiresAt: UInt64, uploadSecret: String) {
        self.id = id
        self.size = size
        self.expiresAt = expiresAt
        self.uploadSecret = uploadSecret
    }
}

public struct HealthResponse: Codable, Sendable {
    /// "ok", or "degraded" (still serving; `reason` says what is wrong).
    public let status: String
    public let name: String
    public let version: String
    /// Why the relay is degraded: "storage_low" (under its free-space reserve: new data is refused, draining
    /// works), or the storage fault met in the last minute ("storage_full", "storage_read_only",
    /// "too_many_open_files", "database_locked", "database_corrupt", "storage_unusable"). Absent when ok.
    public let reason: String?
    public init(status: String, name: String, version: String, reason: String? = nil) {
        self.status = status
        self.name = name
        self.version = version
        self.reason = reason
    }
}

// MARK: Provisioning (linking a new device)

/// A provisioning slot: where an existing device leaves the sealed provisioning message for a new one.
public struct ProvisioningSlot: Codable, Sendable, Equatable {
    /// 16 random bytes in hex: whoever knows it can collect the (sealed) message, once.
    public let id: String
    public let expiresAt: UInt64
    public init(id: String, expiresAt: UInt64) {
        self.id = id
        self.expiresAt = expiresAt
    }
}

/// The sealed provisioning message (PROTOCOL.md §15); the relay cannot read it.
public struct ProvisioningMessage: Codable, Sendable, Equatable {
    public let message: Base64Bytes
    public init(message: Base64Bytes) { self.message = message }
}
