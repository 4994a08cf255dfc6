import Foundation
import ParleyOperations
import ParleyProtocol

/// The `groupId` parameter of signal-cli's sendReaction, remoteDelete, sendTyping and sendReceipt: the
/// methods act in each group it names as they act in a contact's conversation (PROTOCOL.md §17.7).
extension RPCCall where Context == HeadlessContext {
    static var groupIds: RPCParam { RPCParam("groupId", .strings, "One group or an array: its id as signal-cli writes it (base64), or as hex.") }

    /// The groups `groupId` names, each one this account knows: a malformed id is invalid params, an unknown
    /// one signal-cli's -1 "Failed to send to group: Group not found: ID".
    func groups(_ operations: Operations) throws -> [GroupId] {
        try strings("groupId").map { text in
            let id: GroupId
            do { id = try operations.groupId(text) } catch OperationError.invalidInput(let reason) { throw RPCError.invalidParams("groupId: \(reason)") }
            guard (try? operations.showGroup(id)) != nil else { throw GroupMethods.unknownGroup(Data(id.bytes).base64EncodedString()) }
            return id
        }
    }

    /// The conversations `recipient` and `groupId` name together: at least one.
    func conversations(_ operations: Operations) throws -> [ConversationId] {
        let named = try contacts("recipient", resolve: operations.resolve).map(ConversationId.direct) + groups(operations).map(ConversationId.group)
        guard !named.isEmpty else { throw RPCError.invalidParams("give recipient or groupId") }
        return named
    }

    /// The one conversation `recipient` or `groupId` names (not both).
    func conversation(_ operations: Operations) throws -> ConversationId {
        let named = try conversations(operations)
        guard named.count == 1 else { throw RPCError.invalidParams("give one recipient or one groupId") }
        return named[0]
    }
}
