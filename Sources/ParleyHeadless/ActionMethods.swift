import ParleyOperations
import ParleyProtocol

/// signal-cli's reaction and remote-delete methods (edits go through `send` with `editTimestamp`). The
/// message acted on is named by its timestamp (its dataMessage.timestamp) as in signal-cli, or by its id.
enum ActionMethods {
    typealias Call = RPCCall<HeadlessContext>
    static let recipients = RPCParam("recipient", .strings, required: true, "One contact or an array: an address, a nickname or a unique local part.")
    static let targetTimestamp = RPCParam("targetTimestamp", .integer, "The timestamp of the message acted on (its dataMessage.timestamp).")
    static let targetId = RPCParam("targetId", .string, "The id of the message acted on (its dataMessage.id), instead of targetTimestamp.")
    static let result = "[{recipient, id, timestamp, message, edited, deleted, reactions: [{emoji, count}]}]: the message acted on, per recipient"

    static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("sendReaction", "React to a message with one emoji (replacing your earlier reaction to it), or remove your reaction.",
                  params: [recipients,
                           RPCParam("emoji", .string, required: true, "One emoji."),
                           RPCParam("targetAuthor", .string, "The author of the message reacted to (default: the recipient; your address for your own)."),
                           targetTimestamp, targetId,
                           RPCParam("remove", .boolean, "true: remove your reaction (default false).")],
                  result: result) { call in
            let operations = HeadlessMethods.ops(call)
            let author = try call.contact("targetAuthor", resolve: operations.resolve)
            return try await each(call) { recipient in
                try await operations.react(in: recipient, to: try target(call, author: author ?? recipient),
                                           emoji: call.string("emoji")!, remove: call.bool("remove") ?? false)
            }
        },
        RPCMethod("remoteDelete", "Delete one of your messages for everyone: each device shows it as deleted.",
                  params: [recipients, targetTimestamp, targetId], result: result) { call in
            let operations = HeadlessMethods.ops(call)
            return try await each(call) { recipient in
                try await operations.deleteForEveryone(in: recipient, try target(call, author: call.context.account))
            }
        },
    ]

    /// The message `targetTimestamp` or `targetId` names (one of them is required).
    static func target(_ call: Call, author: AccountAddress) throws -> Operations.MessageTarget {
        if let id = call.string("targetId") { return .id(try MessageIdText.parse(id, "targetId")) }
        guard let timestamp = call.int("targetTimestamp") else { throw RPCError.invalidParams("give targetTimestamp or targetId") }
        return .timestamp(UInt64(clamping: timestamp), author: author)
    }

    static func each(_ call: Call, _ act: (AccountAddress) async throws -> ActionResult) async throws -> JSONValue {
        let operations = HeadlessMethods.ops(call)
        var results: [ActionResult] = []
        for recipient in try call.contacts("recipient", resolve: operations.resolve) { results.append(try await act(recipient)) }
        return try HeadlessMethods.json(results)
    }
}
