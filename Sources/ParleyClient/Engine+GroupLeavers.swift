import Foundation
import ParleyProtocol

/// A member leaves a group by proposing its own removal (MLS does not let it commit that), so it is out of
/// the tree, and reads nothing more, only once another member commits the proposal. Without a rule, that
/// waits for whoever next changes the group, and the others go on listing the member and encrypting to it.
/// The rule (PROTOCOL.md §17.6): after the drain that brought the request, the remaining member with the
/// lowest leaf index commits it — one commit, not one per member. If another commit took the epoch first,
/// the retry finds the request carried out or still pending and commits what is left.
extension Engine {
    func commitLeaves() async throws {
        let groups = groupsWithLeavers
        groupsWithLeavers = []
        for id in groups.sorted(by: { $0.hex < $1.hex }) {
            guard let record = try store.group(id), record.active, !leavingGroups.contains(id) else { continue }
            let group = try await withLeafCheck { try loadGroup(id, validator: $0) }.group
            let leaving = Set(group.leavingLeaves)
            guard !leaving.isEmpty, group.tree.occupiedLeaves.first(where: { !leaving.contains($0) }) == group.myLeaf else { continue }
            _ = try await updateOwnLeaf(in: id)   // an empty commit with a path carries the epoch's proposals
        }
    }
}
