import Foundation
import ParleyCrypto

// The relay as MLS delivery service (PROTOCOL.md §17): KeyPackages per device, group handshake ordering by
// epoch, group messages stored once. The relay knows a group only by its opaque id and epoch.

extension RelayAPI {
    /// The header that carries a group's send secret for the epoch named in the request (PROTOCOL.md §17.3),
    /// base64; it authorises group sends and commits in place of a device token.
    public static let groupSecretHeader = "Parley-Group-Secret"
    /// The label of a group send verifier (PROTOCOL.md §17.3).
    public static let groupSendLabel = "parley group send v1"
    /// Bytes of a group id, a send secret and a verifier.
    public static let groupIdLength = 32
    public static let groupSecretLength = 32

    /// What the relay stores for epoch `epoch` of group `groupId`, given the epoch's send secret:
    /// SHA-256(label ‖ 0x00 ‖ groupId ‖ uint64be(epoch) ‖ secret).
    public static func groupSendVerifier(groupId: [UInt8], epoch: UInt64, secret: [UInt8]) -> [UInt8] {
        var message = Array(groupSendLabel.utf8) + [0] + groupId
        message += (0..<8).reversed().map { UInt8(truncatingIfNeeded: epoch >> (8 * UInt64($0))) }
        return SHA256.hash(message + secret)
    }
}

// MARK: KeyPackages

/// `PUT /v1/key-packages`: KeyPackages of the authenticated device (opaque to the relay), and optionally its
/// last-resort one, which replaces the previous one.
public struct KeyPackageUpload: Codable, Sendable {
    public let keyPackages: [Base64Bytes]
    public let lastResort: Base64Bytes?
    public init(keyPackages: [Base64Bytes], lastResort: Base64Bytes?) {
        self.keyPackages = keyPackages
        self.lastResort = lastResort
    }
}

/// `GET /v1/key-packages/count`.
public struct KeyPackageCount: Codable, Sendable, Equatable {
    public let keyPackages: Int
    public let lastResort: Bool
    /// True when fewer than the relay's low watermark are left: the device should upload more.
    public let low: Bool
    public init(keyPackages: Int, lastResort: Bool, low: Bool) {
        self.keyPackages = keyPackages
        self.lastResort = lastResort
        self.low = low
    }
}

/// One device's claimed KeyPackage.
public struct ClaimedKeyPackage: Codable, Sendable, Equatable {
    public let deviceId: UInt32
    public let keyPackage: Base64Bytes
    /// The device's last-resort package (none other was left; it is not consumed).
    public let lastResort: Bool
    public init(deviceId: UInt32, keyPackage: Base64Bytes, lastResort: Bool) {
        self.deviceId = deviceId
        self.keyPackage = keyPackage
        self.lastResort = lastResort
    }
}

/// `POST /v1/key-packages/{address}/claim`: one KeyPackage per device of the account's current list; a
/// device that has none is left out.
public struct KeyPackageClaim: Codable, Sendable, Equatable {
    public let keyPackages: [ClaimedKeyPackage]
    public init(keyPackages: [ClaimedKeyPackage]) { self.keyPackages = keyPackages }
}

// MARK: Groups

/// `POST /v1/groups`: registers a group at epoch 0 with the verifier of epoch 0's send secret.
public struct GroupCreation: Codable, Sendable {
    /// 32 bytes, lowercase hex (chosen at random by the creator: the MLS group id).
    public let groupId: String
    public let verifier: Base64Bytes
    public init(groupId: String, verifier: Base64Bytes) {
        self.groupId = groupId
        self.verifier = verifier
    }
}

/// A group's epoch as the relay holds it; also the body of a 409 `epoch_conflict`.
public struct GroupEpoch: Codable, Sendable, Equatable {
    public let groupId: String
    public let epoch: UInt64
    public init(groupId: String, epoch: UInt64) {
        self.groupId = groupId
        self.epoch = epoch
    }
}

/// 409 to a commit or send for an epoch that is not the group's current one.
public struct EpochConflict: Codable, Sendable, Equatable {
    public let error: String
    public let message: String
    public let epoch: UInt64
    public init(error: String, message: String, epoch: UInt64) {
        self.error = error
        self.message = message
        self.epoch = epoch
    }
}

/// A device a group message is queued for.
public struct GroupRecipient: Codable, Sendable, Hashable {
    public let address: String
    public let deviceId: UInt32
    public init(address: String, deviceId: UInt32) {
        self.address = address
        self.deviceId = deviceId
    }
}

/// `POST /v1/groups/{groupId}/messages` (an application message of `epoch`) and
/// `POST /v1/groups/{groupId}/commits` (a commit from `epoch`, with `nextVerifier` for epoch + 1): one
/// ciphertext, stored once, and the devices whose mailboxes get an entry for it.
public struct GroupSend: Codable, Sendable {
    public let epoch: UInt64
    public let message: Base64Bytes
    public let recipients: [GroupRecipient]
    /// Commits only: the verifier of the next epoch's send secret.
    public let nextVerifier: Base64Bytes?
    /// Commits only, optional: the next epoch's signed GroupInfo (opaque to the relay), kept for a member
    /// that must rejoin by external commit (PROTOCOL.md §17.9).
    public let groupInfo: Base64Bytes?
    /// Commits only, with `groupInfo`: the devices of the next epoch but the committer, the ones the relay
    /// lets fetch that GroupInfo and rejoin.
    public let rejoiners: [GroupRecipient]?
    /// Commits only: the Welcome of the devices the commit adds, stored in the commit's transaction
    /// (PROTOCOL.md §17.2).
    public let welcome: GroupWelcome?
    public init(epoch: UInt64, message: Base64Bytes, recipients: [GroupRecipient], nextVerifier: Base64Bytes? = nil,
                groupInfo: Base64Bytes? = nil, rejoiners: [GroupRecipient]? = nil, welcome: GroupWelcome? = nil) {
        self.epoch = epoch
        self.message = message
        self.recipients = recipients
        self.nextVerifier = nextVerifier
        self.groupInfo = groupInfo
        self.rejoiners = rejoiners
        self.welcome = welcome
    }
}

/// `GET /v1/groups/{groupId}/group-info`: the GroupInfo the commit that started `epoch` left, for a device
/// it names as a rejoiner (PROTOCOL.md §17.9).
public struct GroupInfoAnswer: Codable, Sendable, Equatable {
    public let groupId: String
    public let epoch: UInt64
    public let groupInfo: Base64Bytes
    public init(groupId: String, epoch: UInt64, groupInfo: Base64Bytes) {
        self.groupId = groupId
        self.epoch = epoch
        self.groupInfo = groupInfo
    }
}

/// The Welcome a commit carries (`POST /v1/groups/{groupId}/commits`, PROTOCOL.md §17.2): an MLSMessage of
/// wire format `mls_welcome`, queued for the devices the commit adds in the transaction that stores the
/// commit. Posted on its own after the commit, a Welcome could miss its epoch: a second commit taking the
/// group on before the post left the new devices with nothing, or with a Welcome for an epoch already gone
/// and the commit that ended it filed before the Welcome in their mailboxes.
public struct GroupWelcome: Codable, Sendable {
    public let message: Base64Bytes
    public let recipients: [GroupRecipient]
    public init(message: Base64Bytes, recipients: [GroupRecipient]) {
        self.message = message
        self.recipients = recipients
    }
}

// MARK: Mailbox, version 2

/// A group message as a mailbox entry of fetch version 2.
public struct GroupDelivery: Codable, Sendable, Equatable {
    public let groupId: String
    public let epoch: UInt64
    /// "commit" or "message".
    public let kind: String
    public let message: Base64Bytes
    public init(groupId: String, epoch: UInt64, kind: String, message: Base64Bytes) {
        self.groupId = groupId
        self.epoch = epoch
        self.kind = kind
        self.message = message
    }
}

/// One mailbox entry of fetch version 2: a 1:1 `envelope` or a `group` message, exactly one of the two.
public struct MailboxEntry: Codable, Sendable, Equatable {
    public let id: String
    public let receivedAt: UInt64
    public let envelope: Base64Bytes?
    public let group: GroupDelivery?
    public init(id: String, receivedAt: UInt64, envelope: Base64Bytes?, group: GroupDelivery?) {
        self.id = id
        self.receivedAt = receivedAt
        self.envelope = envelope
        self.group = group
    }
}

/// `GET /v1/mailbox?version=2` (and `POST /v1/mailbox/ack?fetch=N&version=2`): 1:1 envelopes and group
/// messages in the order they were stored. Version 1 (no `version`) leaves group messages out.
public struct FetchResponseV2: Codable, Sendable {
    public let version: Int
    public let messages: [MailboxEntry]
    public let more: Bool
    public let preKeysLow: Bool
    /// The device holds fewer KeyPackages than the relay's low mark: it should upload more.
    public let keyPackagesLow: Bool
    public init(messages: [MailboxEntry], more: Bool, preKeysLow: Bool, keyPackagesLow: Bool) {
        version = 2
        self.messages = messages
        self.more = more
        self.preKeysLow = preKeysLow
        self.keyPackagesLow = keyPackagesLow
    }
}
