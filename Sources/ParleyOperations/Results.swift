import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

// The operations' results. Member names are signal-cli's where the concept is the same (the daemon
// promises them); `--json` prints exactly these objects.

public struct ContactResult: Codable, Sendable, Equatable {
    public let address: String
    /// The nickname the user gave (signal-cli's contact `name`), neutralised; "" for none.
    public let name: String
    public let trustLevel: String
    public let devices: Int
    /// signal-cli's name for it.
    public let isBlocked: Bool

    init(_ contact: Contact) {
        address = contact.address.description
        name = PeerText.forName(contact.nickname)
        trustLevel = TrustLevel.name(contact.trust)
        devices = contact.account.deviceList?.devices.count ?? 0
        isBlocked = contact.blocked
    }
}

public struct IdentityResult: Codable, Sendable, Equatable {
    public let address: String
    public let trustLevel: String
    /// How many devices the contact's signed device list holds.
    public let devices: Int
    public let accountKey: String
    public let safetyNumber: String
    public let scannableSafetyNumber: String
}

public struct SafetyNumberResult: Codable, Sendable, Equatable {
    public let address: String
    public let safetyNumber: String
    public let scannableSafetyNumber: String
}

public struct VerificationResult: Codable, Sendable, Equatable {
    public let address: String
    public enum Verdict: String, Codable, Sendable { case verified, mismatch, versionMismatch }

    public let result: Verdict
    /// For a version mismatch: the scanned code's version and ours (for people; not in the JSON).
    public var theirVersion: Int? = nil
    public var ourVersion: Int? = nil
    /// Whether the contact was verified (by an earlier comparison) and still is: a mismatch changes nothing.
    public var stillVerified = false

    enum CodingKeys: String, CodingKey { case address, result }

    /// The outcome in one sentence for people (the CLI and the chat window say the same). `address` is
    /// peer-controlled text: the caller neutralises the sentence for its terminal.
    public var sentence: String {
        switch result {
        case .verified: "\(address) is verified."
        case .mismatch:
            stillVerified
                ? "The safety numbers do NOT match; \(address) stays verified from your earlier comparison (compare the numbers again, or ask why they differ)."
                : "The safety numbers do NOT match: \(address) is not verified."
        case .versionMismatch:
            "The code was made by a different version (theirs \(theirVersion.map(String.init) ?? "?"), ours \(ourVersion.map(String.init) ?? "?")); compare the digits instead."
        }
    }
}

public struct TrustResult: Codable, Sendable, Equatable {
    public let address: String
    public let trustLevel: String
}

public struct DeviceResult: Codable, Sendable, Equatable {
    public let id: UInt32
    public let identityKey: String
    public let created: UInt64
    /// Whether it is the device answering; left out for a contact's devices.
    public let thisDevice: Bool?
    /// The label given with `devices name` (this account's devices only).
    public let name: String?
}

public struct LinkedDeviceResult: Codable, Sendable, Equatable {
    public let device: UInt32
    public let contacts: Int
    public let messages: Int
}

/// signal-cli's trust levels, where they match: TRUSTED_VERIFIED, TRUSTED_UNVERIFIED, UNTRUSTED; Parley
/// adds CHANGED (a verified key changed: sending stopped until the user decides).
public enum TrustLevel {
    static let names: [(TrustState, String)] = [
        (.verified, "TRUSTED_VERIFIED"), (.unverified, "TRUSTED_UNVERIFIED"), (.changed, "CHANGED"), (.untrusted, "UNTRUSTED"),
    ]

    public static func name(_ t: TrustState) -> String { names.first { $0.0 == t }!.1 }

    /// The state a level names (a result's `trustLevel` back in the words people read: `"\(state)"`).
    public static func state(_ name: String) -> TrustState? { names.first { $0.1 == name }?.0 }
}

extension ContactResult {
    public var trust: TrustState { TrustLevel.state(trustLevel) ?? .untrusted }
}

extension IdentityResult {
    public var trust: TrustState { TrustLevel.state(trustLevel) ?? .untrusted }
}
