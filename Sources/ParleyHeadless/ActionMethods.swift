import ParleyOperations
import ParleyProtocol

/// signal-cli's reaction and remote-delete methods (edits go through `send` with `editTimestamp`), in contacts'
/// conversations (`recipient`) and groups (`groupId`). The message acted on is named by its timestamp (its
/// dataMessage.timestamp) as in signal-cli, or by its id.
enum ActionMethods {
    typealias Call = RPCCall<HeadlessContext>
    static let recipients = RPCParam("recipient", .strings, "One contact or an array: an address, a nickname or a unique local part (or give groupId).")
    static let targetTimestamp = RPCParam("targetTimestamp", .integer, "The timestamp of the message acted on (its dataMessage.timestamp).")
    static let targetId = RPCParam("targetId", .string, "The id of the message acted on (its dataMessage.id), instead of targetTimestamp.")
    static let result = "[{recipient, id, timestamp, message, edited, deleted, reactions: [{emoji, count}]}]: the message acted on, per recipient (a group's is group:HEX)"

    static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("sendReaction", "React to a message with one emoji (replacing your earlier reaction to it), or remove your reaction.",
                  params: [recipients, Call.groupIds,
                           RPCParam("emoji", .string, required: true, "One emoji."),
                           RPCParam("targetAuthor", .string, "The author of the message reacted to (default: the recipient, in a group anyone; your address for your own)."),
                           targetTimestamp, targetId,
                           RPCParam("remove", .boolean, "true: remove your reaction (default false).")],
                  result: result) { call in
            let operations = HeadlessMethods.ops(call)
            let author = try call.contact("targetAuthor", resolve: operations.resolve)
            return try await each(call) { conversation in
                try await operations.react(in: conversation, to: try target(call, author: author ?? conversation.peer),
                                           emoji: call.string("emoji")!, remove: call.bool("remove") ?? false)
            }
        },
        RPCMethod("remoteDelete", "Delete one of your messages for everyone: each device shows it as deleted.",
                  params: [recipients, Call.groupIds, targetTimestamp, targetId], result: result) { call in
            let operations = HeadlessMethods.ops(call)
            return try await each(call) { conversation in
                try await operations.deleteForEveryone(in: conversation, try target(call, author: call.context.account))
            }
        },
    ]

    /// The message `targetTimestamp` or `targetId` names (one of them is required).
    static func target(_ call: Call, author: AccountAddress?) throws -> Operations.MessageTarget {
        if let id = call.string("targetId") { return .id(try MessageIdText.parse(id, "targetId")) }
        guard let timestamp = call.int("targetTimestamp") else { throw RPCError.invalidParams("give targetTimestamp or targetId") }
        return .timestamp(UInt64(clamping: timestamp), author: author)
    }

    /// Acts in each conversation `recipient` and `groupId` name, in that order.
    static func each(_ call: Call, _ act: (ConversationId) async throws -> ActionResult) async throws -> JSONValue {
        var results: [ActionResult] = []
        for conversation in try call.conversations(HeadlessMethods.ops(call)) { results.append(try await act(conversation)) }
        return try HeadlessMethods.json(results)
    }
}
