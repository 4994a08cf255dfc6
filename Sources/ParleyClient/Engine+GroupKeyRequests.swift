import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyStore

/// A member stuck at a commit that removed a device (PROTOCOL.md §17.9): it cannot apply the commit, so it
/// never derived the group's new GroupInfo key, and the GroupInfo it would rejoin from is sealed under
/// that key. Nothing it holds of the group tells it apart from the removed device, so the key comes from
/// outside MLS: it asks a few other members over 1:1 (their sessions authenticate both sides), and a member
/// answers only a device that still has a leaf in its own tree of the group. A removed device has none, so
/// it is never answered. The answer is used only to open the GroupInfo for a rejoin, whose checks (a
/// member's signature, every leaf against its account's device list) decide; it is kept only if the rejoin
/// succeeds.
extension Engine {
    /// How many other accounts of the group a stuck device asks.
    static let groupKeyAskedAccounts = 5

    /// Asks up to `groupKeyAskedAccounts` other accounts among `members` for the group's current key.
    /// Returns whether any request left.
    func requestGroupKey(_ id: GroupId, members: [DeviceAddress]) async -> Bool {
        let own = ownAddress.description
        let accounts = Set(members.map(\.address)).filter { $0 != own }.sorted().prefix(Self.groupKeyAskedAccounts)
        var asked = false
        for text in accounts {
            guard let peer = try? AccountAddress(text) else { continue }
            let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: .direct(peer),
                                  body: .groupInfoKeyRequest(group: id))
            do {
                try await send(content, to: peer)
                asked = true
            } catch {
                continue   // another member may answer
            }
        }
        return asked
    }

    /// Answers the requests the drain brought: the key this device holds, to the requesting device's account,
    /// when that device has a leaf in this device's tree of the group. One answer per account and group.
    func answerGroupKeyRequests() async {
        let requests = groupKeyRequests
        groupKeyRequests = []
        var answered: Set<String> = []
        for (device, id) in requests where device.address != ownAddress.description {
            guard !answered.contains(device.address + id.hex), let peer = try? AccountAddress(device.address),
                  let record = try? store.group(id), record.active, let key = record.infoKey,
                  let group = try? Group(serialized: SecretBytes(record.state)), Self.leafDevices(of: group).contains(device) else { continue }
            answered.insert(device.address + id.hex)
            let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: .direct(peer),
                                  body: .groupInfoKeyAnswer(group: id, epoch: key.epoch, key: key.key.unprotectedBytes))
            _ = try? await send(content, to: peer)
        }
    }

    /// A member's answer: kept for a rejoin after the drain when the sender is a member in this device's
    /// record of the group and the key is newer than the one it holds (a device that follows the group holds
    /// the current key, so an answer changes nothing for it).
    func adoptAnsweredKey(from device: DeviceAddress, group id: GroupId, epoch: UInt64, key: [UInt8]) {
        guard key.count == GroupInfoKey.length, let record = try? store.group(id), record.active, record.members.contains(device),
              record.infoKey.map({ epoch > $0.epoch }) ?? true else { return }
        answeredGroupKeys[id] = GroupInfoKey(epoch: epoch, key: SecretBytes(key))
    }

    /// Rejoins each group a member sent a key for. A key that does not open the group's GroupInfo (a stale
    /// or a false one) changes nothing.
    func rejoinGroupsWithAnsweredKeys() async {
        let answered = answeredGroupKeys
        answeredGroupKeys = [:]
        for (id, key) in answered {
            guard let record = try? store.group(id), record.active, record.infoKey.map({ key.epoch > $0.epoch }) ?? true else { continue }
            let reason = MLSError.protocolViolation("a commit that removed a device could not be applied here")
            guard let events = try? await rejoinGroup(id, name: record.name, infoKey: key, because: reason) else { continue }
            for event in events { emit(event) }
        }
    }
}
