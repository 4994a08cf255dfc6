import ParleyProtocol

/// One commit of this device at a time per group, from loading the state to saving the epoch the relay
/// accepted (or to the relay's refusal). Two commits made at once from one state (the push wake adding a
/// linked device while the user renames the group) would post the same epoch, and the second answer would
/// overwrite the state the first had saved; so would a rejoin that ran while a commit was in flight. The
/// turn is given back before anything that may commit in its turn (the mailbox fetch after a refusal).
extension Engine {
    func takeCommitTurn(in id: GroupId) async {
        while groupCommitTurns.contains(id) {
            await withCheckedContinuation { groupCommitWaiters[id, default: []].append($0) }
        }
        groupCommitTurns.insert(id)
    }

    func endCommitTurn(in id: GroupId) {
        groupCommitTurns.remove(id)
        guard var waiting = groupCommitWaiters[id], !waiting.isEmpty else { return }
        let next = waiting.removeFirst()
        groupCommitWaiters[id] = waiting.isEmpty ? nil : waiting
        next.resume()
    }
}
