import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// The group's GroupInfo key (PROTOCOL.md §17.9): what a commit leaves on the relay for rejoining (the next
/// epoch's GroupInfo) and a rejoiner's external commit are sealed under it, so the relay reads neither the
/// tree (every member device's credential and keys) nor who signed it. Every member keeps the key beside its
/// MLS state, in the group's record: a member whose state no longer opens, or that cannot apply a commit,
/// still has it. It is derived from the MLS exporter when the group is made and again in each epoch whose
/// commit removed a device (so a removed device cannot open what follows, even with the relay's help);
/// members added meanwhile get it from the member that added them, in the new epoch.
extension Engine {
    /// The key derived in `group`'s current epoch.
    static func derivedInfoKey(_ group: Group) -> GroupInfoKey {
        GroupInfoKey(epoch: group.epoch, key: group.export(label: GroupSeal.keyLabel, context: group.context.groupID, length: GroupInfoKey.length))
    }

    /// The key a member holds in `next`, which follows `before`: a new one when the commit between them
    /// removed a device (its credential is in no leaf of `next`; a rejoiner's own old leaf, replaced by a
    /// new one of the same device, is none), else `held`.
    static func infoKey(after next: Group, before: Group, held: GroupInfoKey?) -> GroupInfoKey? {
        guard next.epoch != before.epoch else { return held }
        let staying = Set(leafDevices(of: next))
        return leafDevices(of: before).allSatisfy(staying.contains) ? held : derivedInfoKey(next)
    }

    static func leafDevices(of group: Group) -> [DeviceAddress] {
        group.tree.occupiedLeaves.compactMap { group.tree.leaf($0).flatMap { GroupCredential.device(in: $0.credential) } }
    }

    /// `info` (of epoch `info.groupContext.epoch`) sealed under `key`; nil without a key (a group saved
    /// before there were GroupInfo keys, or a new member's before the key reached it): nothing is left
    /// for rejoining then, rather than a GroupInfo the relay could read.
    static func sealed(_ info: GroupInfo, key: GroupInfoKey?) throws -> Base64Bytes? {
        guard let key else { return nil }
        let id = try GroupId(info.groupContext.groupID)
        return Base64Bytes(try GroupSeal.seal(info.tlsEncoded, .groupInfo, key: key.key, keyEpoch: key.epoch, groupId: id,
                                              epoch: info.groupContext.epoch))
    }

    /// The GroupInfo the relay answered with, opened with this device's key and checked to be of this
    /// group and epoch.
    static func openGroupInfo(_ answer: GroupInfoAnswer, of id: GroupId, key: GroupInfoKey?) throws -> GroupInfo {
        guard let key else {
            throw GroupInfoUnavailable("this device holds no key for the group's GroupInfo (the group was saved before such keys, "
                                       + "or no member has sent it the key yet)")
        }
        let bytes = answer.groupInfo.bytes
        if let named = GroupSeal.keyEpoch(of: bytes), named != key.epoch {
            throw GroupInfoUnavailable("the group's GroupInfo is sealed under the key of epoch \(named) and this device holds the key "
                                       + "of epoch \(key.epoch): a commit it did not follow removed a device")
        }
        let plain = try GroupSeal.open(bytes, .groupInfo, key: key.key, keyEpoch: key.epoch, groupId: id, epoch: answer.epoch)
        let info = try GroupInfo(tlsEncoded: plain)
        guard info.groupContext.groupID == id.bytes, info.groupContext.epoch == answer.epoch else {
            throw ClientError.malformedResponse("the relay's GroupInfo is not of this group and epoch")
        }
        return info
    }

    /// A group entry's MLS message, a sealed one (an external commit) opened with the group's key; nil for
    /// bytes that are no MLS message. A sealed entry this device cannot open (no key, or another epoch's)
    /// throws, to be said in the conversation: this device cannot follow the group past it.
    func groupMessage(of entry: GroupDelivery, in id: GroupId) throws(MLSError) -> MLSMessage? {
        var bytes = entry.message.bytes
        if GroupSeal.isSealed(bytes) {
            guard entry.kind == "commit", let key = (try? store.group(id))?.infoKey,
                  let plain = try? GroupSeal.open(bytes, .externalCommit, key: key.key, keyEpoch: key.epoch, groupId: id, epoch: entry.epoch)
            else { throw .protocolViolation("an external commit sealed under a GroupInfo key this device does not hold") }
            bytes = plain
        }
        return try? MLSMessage(tlsEncoded: bytes)
    }

    /// Sends the group's key to the members a commit added (to every member: MLS has no message to some),
    /// when this device holds one.
    func sendInfoKey(to id: GroupId) async throws {
        guard let key = try store.group(id)?.infoKey else { return }
        try await sendGroupContent(.groupInfoKey(epoch: key.epoch, key: key.key.unprotectedBytes), to: id)
    }

    /// A key a member sent: taken only by a member that holds none (one added since the key was derived),
    /// and only for an epoch it can have been derived in.
    static func adopt(infoKey epoch: UInt64, _ key: [UInt8], into saved: inout GroupRecord) {
        guard saved.infoKey == nil, epoch <= saved.epoch, key.count == GroupInfoKey.length else { return }
        saved.infoKey = GroupInfoKey(epoch: epoch, key: SecretBytes(key))
    }
}

/// Why this device cannot open the GroupInfo it would rejoin from: said in the group's conversation.
struct GroupInfoUnavailable: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
