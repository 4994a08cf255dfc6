import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyStore

/// A member stuck at a commit that removed a device (PROTOCOL.md §17.9): it cannot apply the commit, so it
/// never derived the group's new GroupInfo key, and the GroupInfo it would rejoin from is sealed under
/// that key. Nothing it holds of the group tells it apart from the removed device, so the key comes from
/// outside MLS: it asks other members over 1:1 (their sessions authenticate both sides), and a member
/// answers only a device that still has a leaf in its own tree of the group, after fetching the device's
/// account list afresh (a device revoked since is not sent the key). A removed device has no leaf, so it
/// is never answered. The asking device takes answers only while it waits for one, keeps every one (a
/// false answer cannot push out a true one), and uses them only to open the GroupInfo for a rejoin, whose
/// checks (a member's signature, every leaf against its account's device list) decide; a key is stored
/// only when the rejoin it opened succeeds.
extension Engine {
    /// How many accounts of the group a stuck device asks, chosen at random from its tree (its own account
    /// among them: its other devices hold the key too). The tree may still hold the removed accounts, and a
    /// failed rejoin asks again later (Engine+GroupRecovery.swift), other accounts by chance.
    static let groupKeyAskedAccounts = 8

    /// Asks accounts among `members` for the group's current key. Returns whether any request left.
    func requestGroupKey(_ id: GroupId, members: [DeviceAddress]) async -> Bool {
        let accounts = Set(members.map(\.address)).shuffled().prefix(Self.groupKeyAskedAccounts)
        var asked = false
        for text in accounts {
            guard let peer = try? AccountAddress(text) else { continue }
            do {
                try await sendControl(.groupInfoKeyRequest(group: id), to: peer)
                asked = true
            } catch {
                continue   // another account may answer
            }
        }
        if asked { groupsAwaitingKey.insert(id) }
        return asked
    }

    /// Answers the requests the drain brought: the key this device holds, to the requesting device's account,
    /// when that device has a leaf in this device's tree of the group and is in its account's list as the
    /// relay serves it now. One answer per account and group.
    func answerGroupKeyRequests() async {
        let requests = groupKeyRequests
        groupKeyRequests = []
        var answered: Set<String> = []
        for (device, id) in requests where device != account.deviceAddress && !answered.contains(device.address + id.hex) {
            answered.insert(device.address + id.hex)
            guard let peer = try? AccountAddress(device.address), let record = try? store.group(id), record.active, let key = record.infoKey,
                  let group = try? Group(serialized: SecretBytes(record.state)), Self.leafDevices(of: group).contains(device) else { continue }
            do {
                try await ensureDeviceList(peer)
                try await refreshDeviceList(peer)
            } catch {
                continue
            }
            guard let list = (try? deviceList(of: peer)) ?? nil, list.devices.contains(where: { $0.deviceId == device.deviceId }) else { continue }
            _ = try? await sendControl(.groupInfoKeyAnswer(group: id, epoch: key.epoch, key: key.key.unprotectedBytes), to: peer)
        }
    }

    /// A member's answer, kept for a rejoin after the drain when this device asked, the sender is a member
    /// in this device's record of the group, and the key is newer than the one it holds.
    func adoptAnsweredKey(from device: DeviceAddress, group id: GroupId, epoch: UInt64, key: [UInt8]) {
        guard groupsAwaitingKey.contains(id), key.count == GroupInfoKey.length, let record = try? store.group(id), record.active,
              record.members.contains(device), record.infoKey.map({ epoch > $0.epoch }) ?? true else { return }
        answeredGroupKeys[id, default: []].append(GroupInfoKey(epoch: epoch, key: SecretBytes(key)))
    }

    /// Rejoins each group members sent keys for, trying each key (newest epoch first) until one opens the
    /// group's GroupInfo and the rejoin succeeds. When none does, it says so, and waits for the next answer.
    func rejoinGroupsWithAnsweredKeys() async {
        let answered = answeredGroupKeys
        answeredGroupKeys = [:]
        for (id, keys) in answered {
            await takeCommitTurn(in: id)
            defer { endCommitTurn(in: id) }
            guard let record = try? store.group(id), record.active else { continue }
            var rejoined = false
            for key in keys.sorted(by: { $0.epoch > $1.epoch }) where record.infoKey.map({ key.epoch > $0.epoch }) ?? true {
                let reason = MLSError.protocolViolation("it missed a commit that changed the group's key")
                guard let events = try? await rejoinGroup(id, name: record.name, infoKey: key, because: reason) else { continue }
                for event in events { emit(event) }
                groupsAwaitingKey.remove(id)
                groupRejoinRetry[id] = nil
                rejoined = true
                break
            }
            if !rejoined, let events = try? saveGroup(record, notices: [groupNotice(
                "A member sent a key for the group, but this device could not rejoin with it; it waits for another answer.", in: id)], change: nil) {
                for event in events { emit(event) }
            }
        }
    }
}
