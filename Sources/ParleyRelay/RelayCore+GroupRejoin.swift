import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// Rejoining a group by external commit (PROTOCOL.md §17.9, RFC 9420 §12.4.3.2). A member that cannot go
/// on from its state (it is corrupted, or a commit cannot be applied) has no epoch secret to authorise
/// anything with; it proves instead, with its device token, that it is one of the devices the last commit
/// named as the next epoch's (its rejoiners). Such a device may fetch the GroupInfo that commit left (opaque
/// to the relay) and post an external commit, which is the epoch's one commit like any other. The relay
/// learns which device rejoins, and nothing it did not know: the rejoiners are the devices the epoch's
/// messages go to.
extension RelayCore {
    /// What a commit leaves for rejoining: its GroupInfo and the encoded rejoiners, both or neither.
    func rejoinRecord(of send: GroupSend, commit: Bool) throws -> (groupInfo: [UInt8], rejoiners: [UInt8])? {
        guard let groupInfo = send.groupInfo else {
            guard send.rejoiners == nil else { throw RelayError.badRequest("rejoiners come with a GroupInfo") }
            return nil
        }
        guard commit else { throw RelayError.badRequest("only a commit carries a GroupInfo") }
        guard let rejoiners = send.rejoiners else { throw RelayError.badRequest("a GroupInfo comes with its rejoiners") }
        guard !groupInfo.bytes.isEmpty else { throw RelayError.badRequest("the GroupInfo is empty") }
        guard groupInfo.bytes.count <= configuration.maxGroupInfoBytes else {
            throw RelayError.payloadTooLarge("a GroupInfo exceeds \(configuration.maxGroupInfoBytes) bytes")
        }
        guard rejoiners.count <= configuration.maxGroupRecipients else {
            throw RelayError.badRequest("at most \(configuration.maxGroupRecipients) rejoiners")
        }
        var devices = Set<DeviceAddress>()
        let reader = LocalAddressReader(relayName: configuration.name)
        for rejoiner in rejoiners {
            let device = DeviceAddress(address: try parseLocalAddress(rejoiner.address, with: reader), deviceId: rejoiner.deviceId)
            guard devices.insert(device).inserted else { throw RelayError.badRequest("\(device.address)#\(device.deviceId) is named twice") }
        }
        return (groupInfo.bytes, Self.encodeRejoiners(devices))
    }

    /// The rejoiners as the storage keeps them: `deviceId address` lines, sorted (the storage never reads them).
    static func encodeRejoiners(_ devices: Set<DeviceAddress>) -> [UInt8] {
        Array(devices.map { "\($0.deviceId) \($0.address)" }.sorted().joined(separator: "\n").utf8)
    }

    static func rejoiners(_ encoded: [UInt8], contain device: DeviceAddress) -> Bool {
        let line = Array("\(device.deviceId) \(device.address)".utf8)
        return encoded.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).contains { $0.elementsEqual(line) }
    }

    /// The check of `storeInGroup`, inside its retry loop, with the group as stored at the send's epoch.
    func authorise(_ authorisation: GroupAuthorisation, _ send: GroupSend, groupId: [UInt8], group: StoredGroup) async throws {
        switch authorisation {
        case .secret(let secret):
            guard let secret, constantTimeEquals(RelayAPI.groupSendVerifier(groupId: groupId, epoch: send.epoch, secret: secret), group.verifier) else {
                throw RelayError.unauthorized("the group secret does not match epoch \(send.epoch)")
            }
        case .rejoiner(let device):
            // The GroupInfo of an older epoch names devices an epoch's commit may since have removed.
            guard let stored = try await storage.groupInfo(groupId), stored.epoch == send.epoch,
                  Self.rejoiners(stored.rejoiners, contain: device) else {
                throw RelayError.forbidden("this device may not rejoin the group at epoch \(send.epoch)")
            }
        }
    }

    /// `GET /v1/groups/{groupId}/group-info`: for a rejoiner of the current epoch only; to anyone else, as to
    /// a group without one, 404 (the answer does not say whether the group exists).
    func groupInfo(_ rawGroupId: String, for device: DeviceAddress) async throws -> GroupInfoAnswer {
        let groupId = try Self.parseGroupId(rawGroupId)
        guard let group = try await storage.group(groupId), let stored = try await storage.groupInfo(groupId), stored.epoch == group.epoch,
              Self.rejoiners(stored.rejoiners, contain: device) else {
            throw RelayError.notFound("no GroupInfo of group \(rawGroupId) for this device")
        }
        return GroupInfoAnswer(groupId: rawGroupId, epoch: stored.epoch, groupInfo: Base64Bytes(stored.groupInfo))
    }

    /// `POST /v1/groups/{groupId}/external-commits`: an external commit by a rejoiner, stored as the epoch's
    /// commit (409 with the current epoch when another took it first).
    func externalCommit(_ rawGroupId: String, _ send: GroupSend, by device: DeviceAddress) async throws -> Int {
        guard send.groupInfo != nil else { throw RelayError.badRequest("an external commit leaves the next epoch's GroupInfo") }
        return try await storeInGroup(rawGroupId, send, commit: true, authorisedBy: .rejoiner(device))
    }
}
