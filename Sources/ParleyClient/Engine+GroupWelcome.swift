import ParleyMLS
import ParleyRelayAPI

extension Engine {
    /// The Welcome a commit carries to the devices it adds (PROTOCOL.md §17.2): the relay queues it in the
    /// commit's transaction, so no other commit can come between them, and a commit that took the group
    /// further is queued after it (the new device joins, then processes that commit).
    static func welcome(_ output: Group.CommitOutput, from before: [GroupRecipient], to after: [GroupRecipient]) -> GroupWelcome? {
        guard let welcome = output.welcome else { return nil }
        let present = Set(before)
        let added = after.filter { !present.contains($0) }
        guard !added.isEmpty else { return nil }
        return GroupWelcome(message: Base64Bytes(MLSMessage(body: .welcome(welcome)).tlsEncoded), recipients: added)
    }
}
