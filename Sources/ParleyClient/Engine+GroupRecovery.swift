import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Recovery in groups (PROTOCOL.md §17.9): a member never goes silent. One that cannot go on from its state
/// (the state does not open, or a genuine commit of its epoch does not apply) says so in the conversation
/// and rejoins by external commit from the GroupInfo the last commit left on the relay; one whose request to
/// leave was lost (a commit of another member moved the epoch without it) asks again in the new epoch.
extension Engine {
    // MARK: Rules for what a member applies

    /// Checks made before a group message reaches the state: a commit is applied only as the relay ordered
    /// it (an entry of kind "commit"; one slipped in as a plain message would fork this member from the
    /// relay's order), and an external commit only when it rejoins a member's own leaf (a device of the
    /// group that lost its state; the leaf check then holds its new leaf to its account's device list).
    static func checkGroupRules(_ message: MLSMessage, kind: String) throws {
        if case .privateMessage(let m) = message.body, m.contentType == .commit, kind != "commit" {
            throw MLSError.protocolViolation("a commit the relay did not order")
        }
        guard case .publicMessage(let m) = message.body, case .commit(let commit) = m.content.body else { return }
        guard kind == "commit" else { throw MLSError.protocolViolation("a commit the relay did not order") }
        if case .newMemberCommit = m.content.sender {
            let removes = commit.proposals.contains { if case .proposal(.remove) = $0 { true } else { false } }
            guard removes else { throw MLSError.protocolViolation("an external commit that does not rejoin a member's own leaf") }
        }
    }

    // MARK: Rejoining

    /// After `error` on `entry`: whether this device is stuck, and if so the rejoin and what it said in the
    /// conversation. Stuck means: its state does not open; or `message` is a genuine commit of its epoch
    /// that it could not apply (the relay has ordered it, so nothing of the old epoch goes through any
    /// more); or `entry` is of a later epoch than its state while this device sent a commit or proposal in
    /// its epoch — the relay delivers a group's entries in order, so a commit of its epoch went by
    /// unapplied, and it may be this device's own, whose copy it dropped while the commit was in flight and
    /// whose answer was then lost. Without such a commit a later entry is no reason to rejoin: a commit an
    /// insider forged and had the relay order would otherwise move every member onto the GroupInfo the
    /// forger left.
    /// A forged commit (a bad signature or membership tag, a sender that is not a member) changes nothing.
    /// A rejoin that failed is tried again on a later entry after a wait that doubles (30 s up to an hour),
    /// so a device stuck for a while does not fetch the GroupInfo, or ask for the key, on every entry.
    func recoverIfStuck(after error: MLSError, entry: GroupDelivery, message: MLSMessage, in id: GroupId) async throws -> [EngineEvent] {
        // In the commit turn (Engine+GroupCommitTurns.swift): a commit of this device in flight is answered
        // first, and an entry of the epoch it starts then finds the state there, not stuck.
        await takeCommitTurn(in: id)
        defer { endCommitTurn(in: id) }
        guard let record = try store.group(id), record.active, entry.epoch >= record.epoch else { return [] }
        if let group = try? Group(serialized: SecretBytes(record.state)) {
            let unappliedCommit = entry.kind == "commit" && entry.epoch == group.epoch
                && (group.isAuthenticCommit(message) || group.ownCopy(message) == .unappliedCommit)
            guard unappliedCommit || (entry.epoch > group.epoch && group.sentHandshakeThisEpoch) else { return [] }
        }
        let now = clock.nowMilliseconds()
        if let retry = groupRejoinRetry[id], now < retry.at { return [] }
        do {
            let events = try await rejoinGroup(id, name: record.name, infoKey: record.infoKey, because: error)
            groupRejoinRetry[id] = nil
            return events
        } catch {
            let wait = Self.doubledWait(after: groupRejoinRetry[id]?.wait, first: Self.rejoinFirstWait, longest: Self.rejoinLongestWait)
            groupRejoinRetry[id] = (at: now + wait, wait: wait)
            var text = "This device could not follow the group and could not rejoin it: \(Self.reason(error))."
            // Without the group's current GroupInfo key, it asks other members for it (Engine+GroupKeyRequests.swift).
            if error is GroupInfoUnavailable, await requestGroupKey(id, members: record.members) {
                text += " It asked other members for the group's current key and rejoins when one of them sends it."
            }
            return try saveGroup(record, notices: [groupNotice(text, in: id)], change: nil) + [.undecryptable(from: nil, reason: "could not rejoin the group")]
        }
    }

    static let rejoinFirstWait: UInt64 = 30_000
    static let rejoinLongestWait: UInt64 = 3_600_000

    /// Rejoins the group by external commit (RFC 9420 §12.4.3.2), in the caller's commit turn: fetches the GroupInfo the relay keeps for
    /// this device, removes this device's old leaf and adds a new one in one commit, which the relay takes
    /// as the epoch's one commit; refused because another commit took the epoch first, it starts over from
    /// that commit's GroupInfo. The new state is saved once the relay has accepted the commit.
    /// The new state is saved with a notice that says why (`reason`) in one transaction. The GroupInfo and
    /// the external commit are sealed from the relay under the group's GroupInfo key (`infoKey`, kept beside
    /// the state), which the rejoin keeps: it removes no device.
    func rejoinGroup(_ id: GroupId, name: String, infoKey: GroupInfoKey?, because reason: MLSError) async throws -> [EngineEvent] {
        let me = account.deviceAddress
        let credential = Credential.basic(identity: GroupCredential.identity(me))
        let signer = try groupSignatureKey
        let relay = self.relay
        for _ in 0..<Self.groupRetries {
            let answer = try await authorised { token in try await relay.groupInfo(of: id.hex, token: token) }
            let info = try Self.openGroupInfo(answer, of: id, key: infoKey)
            guard let infoKey else { throw GroupInfoUnavailable("this device holds no key for the group's GroupInfo") }
            let leaf = try newKeyPackage(lastResort: false).package.leafNode
            let joined = try await withLeafCheck { validator in
                let tree = try info.carriedTree(credentialValidator: validator)
                guard let old = tree.occupiedLeaves.first(where: { tree.leaf($0)?.credential == credential }) else {
                    throw ClientError.notAMember(me.address)
                }
                return try Group.joinByExternalCommit(groupInfo: info, leaf: leaf, signatureKey: signer, removing: old,
                                                      credentialValidator: validator)
            }
            // The external commit goes to every device of the new epoch but this one: the relay knows the rejoiner
            // from its token anyway, so a copy to itself would hide nothing (PROTOCOL.md §17.9). The rejoiners are
            // every device, this one included, as any commit names them.
            let group = joined.group, devices = recipients(joined.group)
            let others = devices.filter { $0 != GroupRecipient(address: me.address, deviceId: me.deviceId) }
            let sealedCommit = try GroupSeal.seal(joined.message.tlsEncoded, .externalCommit, key: infoKey.key, keyEpoch: infoKey.epoch, groupId: id,
                                            epoch: info.groupContext.epoch)
            let send = GroupSend(epoch: info.groupContext.epoch, message: Base64Bytes(sealedCommit), recipients: others,
                                 nextVerifier: Self.verifier(group), groupInfo: try Self.sealed(group.currentGroupInfo(), key: infoKey), rejoiners: devices)
            do {
                try await authorised { token in try await relay.externalCommit(send, toGroup: id.hex, token: token) }
            } catch ClientError.epochConflict {
                continue
            }
            let record = Self.record(of: group, id: id, name: name, infoKey: infoKey)
            let notice = groupNotice("This device could not follow the group (\(reason.description)) and rejoined it; "
                                     + "what was sent to the group meanwhile is lost to it.", in: id)
            return try saveGroup(record, notices: [notice], change: nil)
        }
        throw ClientError.timedOut("the group kept changing; this device did not rejoin it, try again")
    }

    /// What a commit leaves on the relay for a member that must rejoin: the next epoch's GroupInfo, sealed
    /// under the key of the next epoch (`key`), and the devices that may fetch it (every device of the next
    /// epoch, the committer's included: the epoch's messages go to all of them, so the list names no
    /// committer). Nothing without a key.
    func rejoinFields(of output: Group.CommitOutput, next: Group, key: GroupInfoKey?) throws -> (groupInfo: Base64Bytes?, rejoiners: [GroupRecipient]?) {
        guard let sealed = try Self.sealed(output.groupInfo, key: key) else { return (nil, nil) }
        return (sealed, recipients(next))
    }

    // MARK: Leaving

    /// A group this device has left (its record inactive) while its leaf is still in the tree (the state is
    /// still a member's): its request to leave waits for another member's commit. Such a group's proposals
    /// and commits are applied (a commit may refer to a proposal), its messages are not read; a commit that
    /// moved the epoch without removing this device lost the request, which is made again in the new epoch.
    /// Any other message (of a group this device is not in, or was removed from; this device's own copy) changes
    /// nothing.
    func receiveWhileLeaving(_ message: MLSMessage, kind: String, in id: GroupId) async throws {
        guard let record = try store.group(id), !record.active, !record.state.isEmpty,
              var group = try? Group(serialized: SecretBytes(record.state)), group.isActive,
              (try? Self.checkGroupRules(message, kind: kind)) != nil, (try? isOwnCopy(message, in: group, id: id)) == false else { return }
        if case .privateMessage(let m) = message.body, m.contentType == .application { return }   // read no more
        group.credentialValidator = try leafCheck().validator
        let processed: Group.Processed
        do { processed = try group.process(message) } catch { return }   // of another epoch, or refused: nothing changes
        // A leaving device rejoins nothing: its GroupInfo key is kept as it was, never rotated or sent.
        var saved = Self.record(of: group, id: id, name: record.name, infoKey: record.infoKey)
        saved.active = false
        try store.saveGroup(saved)
        if case .commit = processed { try await proposeLeaving(id, group: group, record: saved) }
    }

    /// Proposes this device's removal in the group's current epoch (the state saved first, as for any
    /// message it makes). Refused for a stale epoch, it waits: the commit that moved on is in the mailbox
    /// and brings the next chance.
    func proposeLeaving(_ id: GroupId, group: Group, record: GroupRecord) async throws {
        var next = group
        let message = try next.propose(.remove(leafIndex: next.myLeaf), wireFormat: Self.handshakeWireFormat)
        var saved = Self.record(of: next, id: id, name: record.name, infoKey: record.infoKey)
        saved.active = false
        try store.saveGroup(saved)
        let devices = recipients(group)
        guard devices.count > 1 else { return }   // alone (this device): nobody to ask
        do {
            try await relay.send(GroupSend(epoch: group.epoch, message: Base64Bytes(message.tlsEncoded), recipients: devices),
                                 toGroup: id.hex, secret: Self.sendSecret(group))
        } catch ClientError.epochConflict {
            return
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let error = error as? ClientError { return "\(error)" }
        if let error = error as? MLSError { return error.description }
        if let error = error as? GroupInfoUnavailable { return error.description }
        if let error = error as? ProtocolError { return error.description }
        return "\(type(of: error))"
    }
}
