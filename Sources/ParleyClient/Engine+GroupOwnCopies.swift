import ParleyMLS
import ParleyProtocol

/// A group message or commit goes to every device of the group, the sender's own included, so that its
/// recipient list is the same whoever of the epoch's members sends and does not tell the relay who sent
/// (PROTOCOL.md §17.4). Its copy comes back to the sender, which recognises it and drops it unread: no
/// "could not be read" notice, no event, no state change; the mailbox entry is acknowledged with its page,
/// after the page's transaction, as any other.
///
/// Recognised from the group's state, not from a record of what was sent (`Group.ownCopy`): a message
/// from this device's leaf whose key generation this device already used (only it advances its own
/// sending ratchet), a proposal it cached when it sent it, a handshake message of an epoch it has left.
/// A message that merely claims this leaf is no copy, and is refused by `process` as before. No record is
/// kept because none is needed: the state already says what this device sent, and a record would have to
/// be stored, sealed and pruned with it.
///
/// This device's own commit of the current epoch arrives while the commit is in flight (the relay wakes
/// this device as it stores the commit, before the answer reaches `commit(to:)`, which then saves the new
/// epoch): it is dropped then, when its bytes are the commit in flight. Any other commit of this device
/// of the current epoch is one whose new epoch was lost here (the relay took it but its answer never came,
/// so it was made again, or the state was not saved): it cannot be applied (a member does not apply its
/// own commit, and the handshake key of a PrivateMessage one is spent), and the member rejoins (§17.9)
/// without an "unreadable" notice: the rejoin says why.
extension Engine {
    func isOwnCopy(_ message: MLSMessage, in group: Group, id: GroupId) throws -> Bool {
        switch group.ownCopy(message) {
        case .sent?:
            return true
        case .unappliedCommit?:
            guard groupCommitsInFlight[id] == message.tlsEncoded else { throw OwnCommitLost() }
            return true
        case nil:
            return false
        }
    }
}

/// This device's own commit, ordered by the relay, whose new epoch this device did not save.
struct OwnCommitLost: Error, CustomStringConvertible {
    var description: String { "this device's own commit was taken by the relay but its new epoch was lost here" }
}
