import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Devices in groups (PROTOCOL.md §17.8): a group's leaves follow its members' signed device lists.
/// * A device linked to an account is added to the account's groups by the account's own devices (a
///   contact's devices are never added by others): after each mailbox drain, a device of the account that is
///   in a group and whose own device list names a device with no leaf there claims that device's KeyPackage
///   and commits the Add, checking again on the winning epoch when another device's Add took the race. The
///   new device, once its KeyPackages are on the relay, sends the others a device-ready content: its envelope
///   wakes their push connections, so the drain that adds it comes at once rather than whenever mail next
///   arrives.
/// * A revoked device's leaves are removed by the device that revokes it, at once, in every group; any member
///   whose send or commit the relay refuses because a recipient device left its account's list fetches the
///   lists of the group's accounts, removes every leaf they no longer name, and sends again.
/// * A leaf refused by the leaf check (§16.2) while processing a commit is said in the group's conversation,
///   naming the device and whether its account is verified.
extension Engine {
    /// How long a device whose KeyPackage could not be claimed waits before the next claim, at first and at
    /// most (each claim takes one KeyPackage of every device of the account, so it is not made every drain).
    static let ownDeviceClaimFirstWait: UInt64 = 5_000
    static let ownDeviceClaimLongestWait: UInt64 = 15 * 60_000

    /// The wait before the next try of something that failed after waiting `previous` (nil: the first
    /// failure): `first`, then doubled each time, never over `longest`. In milliseconds.
    static func doubledWait(after previous: UInt64?, first: UInt64, longest: UInt64) -> UInt64 {
        min(longest, previous.map { $0 * 2 } ?? first)
    }

    // MARK: Adding this account's new devices

    /// After each mailbox drain: this device says it is ready for the account's groups if it has not yet
    /// (just linked), and adds the account's devices that are not leaves yet to the groups it is in.
    func keepOwnDevicesInGroups() async {
        await announceReadyForGroups()
        _ = try? await addOwnDevicesToGroups()
    }

    /// Set by `completeLink` until this device has told the account's other devices it is ready.
    static let readyForGroupsUnsent = "ready-for-groups-unsent"

    /// Tells this account's other devices, in a device-ready content (PROTOCOL.md §12 type 0x0B, §17.8), that
    /// this device's KeyPackages are on the relay, so that they add it to the account's groups now: the relay
    /// wakes their push connections for the envelope, and the drain that follows adds it. Sent once after the
    /// link; while the relay cannot take it (unreachable, busy), every drain tries again (a second one costs
    /// the others only a look at their groups). Refused for good, it is given up: they add this device at
    /// their next drain anyway.
    func announceReadyForGroups() async {
        guard (try? store.setting(Self.readyForGroupsUnsent)) != nil else { return }
        do {
            if account.deviceList.devices.count > 1 {
                _ = try await stockKeyPackages()
                try await sendControl(.deviceReady, to: ownAddress)
            }
            try store.setSetting(Self.readyForGroupsUnsent, nil)
        } catch let error as ClientError where error.isWorthRetrying {
            // The relay could not take it now: the next drain sends it.
        } catch {
            try? store.setSetting(Self.readyForGroupsUnsent, nil)
        }
    }

    /// Another device of this account is ready for its groups (a device-ready content): it is claimed at the
    /// end of this drain, whatever wait an earlier claim that found no KeyPackage of it set.
    func ownDeviceIsReady(_ deviceId: UInt32) {
        ownDeviceClaimRetry[deviceId] = nil
    }

    /// Adds every device of this account's signed list that is not a leaf to each active group this device
    /// is in. Returns the devices added (one entry per group and device). A device without a KeyPackage on
    /// the relay yet (just linked) is tried again after a wait that doubles.
    @discardableResult
    public func addOwnDevicesToGroups() async throws -> [GroupId: [UInt32]] {
        guard !addingOwnDevicesToGroups, account.deviceList.devices.count > 1 else { return [:] }
        addingOwnDevicesToGroups = true
        defer { addingOwnDevicesToGroups = false }
        let own = ownAddress.description, now = clock.nowMilliseconds()
        var added: [GroupId: [UInt32]] = [:]
        for record in try store.groups() where record.active && !leavingGroups.contains(record.id) {
            let present = Set(record.members.filter { $0.address == own }.map(\.deviceId))
            let missing = account.deviceList.devices.filter { entry in
                !present.contains(entry.deviceId) && (ownDeviceClaimRetry[entry.deviceId].map { $0.at <= now } ?? true)
            }
            guard present.contains(account.device.deviceId), !missing.isEmpty else { continue }
            let packages = try await claimOwnKeyPackages(for: missing)
            for entry in missing where !packages.contains(where: { GroupCredential.device(in: $0.leafNode.credential)?.deviceId == entry.deviceId }) {
                let wait = Self.doubledWait(after: ownDeviceClaimRetry[entry.deviceId]?.wait, first: Self.ownDeviceClaimFirstWait,
                                            longest: Self.ownDeviceClaimLongestWait)
                ownDeviceClaimRetry[entry.deviceId] = (at: now + wait, wait: wait)
            }
            guard !packages.isEmpty else { continue }
            do {
                _ = try await commit(to: record.id) { group in
                    // Checked on the epoch the commit is made in: a device another of this account's devices
                    // added meanwhile (the race the relay decided) is not added twice.
                    let fresh = Self.notYetLeaves(packages, in: group)
                    guard !fresh.isEmpty else { throw NothingToCommit() }
                    return try group.commit(adding: fresh, wireFormat: Self.handshakeWireFormat)
                }
            } catch is NothingToCommit {
                continue
            }
            let saved = try store.group(record.id)
            let joined = packages.compactMap { GroupCredential.device(in: $0.leafNode.credential)?.deviceId }
                .filter { id in saved?.members.contains(DeviceAddress(address: own, deviceId: id)) == true }
            for id in joined { ownDeviceClaimRetry[id] = nil }
            added[record.id] = joined
            try await sendGroupContent(.groupName(saved?.name ?? record.name), to: record.id)
            try await sendInfoKey(to: record.id)
        }
        return added
    }

    /// One KeyPackage of each device in `devices` (this account's), checked: signed, its credential naming
    /// that device, its signature key the one this account's signed list gives the device.
    private func claimOwnKeyPackages(for devices: [DeviceEntry]) async throws -> [KeyPackage] {
        let wanted = Dictionary(uniqueKeysWithValues: devices.map { ($0.deviceId, $0.identityKey.bytes) })
        let claim = try await relay.claimKeyPackages(of: ownAddress.description)
        return claim.keyPackages.compactMap { claimed in
            guard let key = wanted[claimed.deviceId], let package = try? KeyPackage(tlsEncoded: claimed.keyPackage.bytes),
                  package.verifySignature(suite: Self.groupSuite),
                  GroupCredential.device(in: package.leafNode.credential) == DeviceAddress(address: ownAddress.description, deviceId: claimed.deviceId),
                  package.leafNode.signatureKey == key else { return nil }
            return package
        }
    }

    /// The packages whose device (by credential) and signature key are not in the group's tree yet.
    static func notYetLeaves(_ packages: [KeyPackage], in group: Group) -> [KeyPackage] {
        let leaves = group.tree.occupiedLeaves.compactMap { group.tree.leaf($0) }
        let keys = Set(leaves.map(\.signatureKey)), devices = Set(leaves.compactMap { GroupCredential.device(in: $0.credential) })
        return packages.filter { package in
            guard let device = GroupCredential.device(in: package.leafNode.credential) else { return false }
            return !keys.contains(package.leafNode.signatureKey) && !devices.contains(device)
        }
    }

    // MARK: Removing devices that left their account's list

    /// Removes this account's device `deviceId` (just revoked) from every active group: one commit per
    /// group, not delivered to that device (the relay no longer knows it). A group whose commit fails here is
    /// cleaned by the rule for every member (`removeUnlistedLeaves`) at its next send or commit.
    func removeRevokedDeviceFromGroups(_ deviceId: UInt32) async {
        let revoked = DeviceAddress(address: ownAddress.description, deviceId: deviceId)
        for record in (try? store.groups()) ?? [] where record.active && record.members.contains(revoked) {
            _ = try? await removeLeaves(of: [revoked], from: record.id)
        }
    }

    /// Fetches the device list of every account with a leaf in the group (the relay refused a recipient that
    /// is no longer in its account's list) and removes, in a commit of this device, every leaf whose device
    /// those lists no longer name. Returns whether a list changed or a leaf was removed, that is whether the
    /// refused send is worth trying again.
    func removeUnlistedLeaves(from id: GroupId) async throws -> Bool {
        guard !removingUnlistedLeaves, let record = try store.group(id), record.active else { return false }
        removingUnlistedLeaves = true
        defer { removingUnlistedLeaves = false }
        var changed = false
        for text in record.accounts {
            guard let address = try? AccountAddress(text) else { continue }
            let before = try deviceList(of: address)?.version
            do { try await refreshDeviceList(address) } catch ClientError.relay(status: 404, _, _) { continue }
            if try deviceList(of: address)?.version != before { changed = true }
        }
        let unlisted = try record.members.filter { member in
            guard let address = try? AccountAddress(member.address), let list = try deviceList(of: address) else { return false }
            return list.device(member.deviceId) == nil && member != account.deviceAddress
        }
        guard !unlisted.isEmpty else { return changed }
        return try await removeLeaves(of: unlisted, from: id) || changed
    }

    /// Commits the removal of the leaves of `devices` that are still in the group (checked again on the
    /// epoch the commit is made in); the commit is not delivered to them. Returns whether it was committed.
    private func removeLeaves(of devices: [DeviceAddress], from id: GroupId) async throws -> Bool {
        let gone = Set(devices)
        do {
            _ = try await commit(to: id, notDelivering: gone) { group in
                let leaves = Self.leaves(of: group) { gone.contains($0) }
                guard !leaves.isEmpty else { throw NothingToCommit() }
                return try group.commit(removing: leaves, wireFormat: Self.handshakeWireFormat)
            }
            return true
        } catch is NothingToCommit {
            return false
        }
    }

    // MARK: Refused leaves and key changes

    /// Says in the group's conversation which device's leaf the commit `message` carried that the leaf check
    /// refused (the lists were fetched again before: the device is not in its account's list, or the account
    /// is not one this device may send to), so the user sees why the group stopped changing here. Nil when
    /// no refused device can be named (the caller records the failure as any other).
    func noticeRefusedLeaves(of message: MLSMessage, in id: GroupId) throws -> EngineEvent? {
        guard let record = try store.group(id), record.active else { return nil }
        let check = try leafCheck()
        var group = try Group(serialized: SecretBytes(record.state), credentialValidator: check.validator)
        _ = try? group.process(message)
        let refused = check.refusedDevices
        guard !refused.isEmpty else { return nil }
        for device in refused {
            guard let address = try? AccountAddress(device.address) else { continue }
            let contact = address == ownAddress ? nil : try store.contact(address)
            let words: String = switch contact?.trust {
            case .verified?:
                "A group change was refused: it adds or changes a leaf for \(device), whose key is not in the device list of \(address) that you verified."
            case .changed?, .untrusted?:
                "A group change was refused: it adds or changes a leaf for \(device), and the identity key of \(address) changed and is not trusted. "
                    + "Verify the new safety number with `parley verify \(address)` or accept it with `parley trust \(address)`."
            default:
                "A group change was refused: it adds or changes a leaf for \(device), whose key is not in the signed device list of \(address)."
            }
            try notice(words, in: .group(id), about: address)
        }
        let reason = "a leaf of \(refused.map(\.description).joined(separator: ", ")) is not in its account's device list"
        return .undecryptable(from: nil, reason: reason)
    }

    /// Writes `text` into the conversation of every active group where `address` has a leaf (a member's
    /// identity or device key changed: the members of a group see it where they talk to them).
    func noticeInSharedGroups(_ text: String, about address: AccountAddress) throws {
        for record in try store.groups() where record.active && record.members.contains(where: { $0.address == address.description }) {
            try notice(text, in: .group(record.id), about: address)
        }
    }
}

/// A commit's `make` found nothing left to do on the current epoch (another commit did it).
struct NothingToCommit: Error {}
