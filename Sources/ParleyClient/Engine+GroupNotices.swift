import Foundation
import ParleyProtocol
import ParleyStore

/// What changed in a group, as the notice in its conversation says it. Front ends refresh the group's
/// roster entry and title on it; the daemon turns it into signal-cli's group UPDATE.
public enum GroupChange: Sendable, Equatable {
    /// This device joined the group from a Welcome.
    case joined
    /// Accounts became members, or stopped being members. Both empty: only members' devices changed.
    case members(added: [AccountAddress], removed: [AccountAddress])
    case renamed(String)
    /// This device is no longer a member: it left, or a commit removed it.
    case ended
}

/// Membership notices, a local record (nothing on the wire): written into the group's conversation in the transaction that
/// saves the state they describe, so a notice never tells of a change the state does not hold.
extension Engine {
    /// The notices and the change from the members of `before` to those of `after`; nil when no device
    /// joined or left.
    func membershipChange(from before: GroupRecord, to after: GroupRecord) -> (notices: [MessageRecord], change: GroupChange)? {
        guard Set(before.members) != Set(after.members) else { return nil }
        let old = Set(before.accounts), new = Set(after.accounts)
        let added = after.accounts.filter { !old.contains($0) }.compactMap { try? AccountAddress($0) }
        let removed = before.accounts.filter { !new.contains($0) }.compactMap { try? AccountAddress($0) }
        var notices: [MessageRecord] = []
        if !added.isEmpty { notices.append(groupNotice(Self.listed(added) + (added.count == 1 ? " was" : " were") + " added to the group.", in: after.id)) }
        if !removed.isEmpty { notices.append(groupNotice(Self.listed(removed) + (removed.count == 1 ? " is" : " are") + " no longer in the group.", in: after.id)) }
        return (notices, .members(added: added, removed: removed))
    }

    /// A system notice for the conversation of group `id` (not yet stored).
    func groupNotice(_ text: String, in id: GroupId) -> MessageRecord {
        let now = clock.nowMilliseconds()
        return MessageRecord(conversation: .group(id), direction: .system, sender: DeviceAddress(address: ownAddress.description, deviceId: 0),
                             clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now, text: text, state: .received)
    }

    /// Saves `record` with `notices` in one transaction; returns the events that tell the front ends:
    /// each notice as stored, then the change.
    func saveGroup(_ record: GroupRecord, notices: [MessageRecord], change: GroupChange?, usedKeyPackage: [UInt8]? = nil) throws -> [EngineEvent] {
        try store.saveGroup(record, filing: notices, usedKeyPackage: usedKeyPackage)
        let stored = try notices.map { try store.message(sentBy: ownAddress, clientMessageId: $0.clientMessageId) ?? $0 }
        return stored.map(EngineEvent.message) + (change.map { [.groupChanged(record.id, $0)] } ?? [])
    }

    static func listed(_ accounts: [AccountAddress]) -> String {
        accounts.map(\.description).joined(separator: ", ")
    }
}
