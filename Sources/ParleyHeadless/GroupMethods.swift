import Foundation

/// signal-cli's group methods, answered truthfully while Parley has no groups: an account is in no group,
/// so listGroups is empty and a group id names no group this account knows. signal-cli answers an
/// unknown group with its user error (-1) "Failed to send to group: Group not found: ID"; a bot that
/// handles that case handles Parley's answer. Creating a group (updateGroup without groupId) is refused
/// with -32000, because a success would promise a group that does not exist.
enum GroupMethods {
    typealias Call = RPCCall<HeadlessContext>
    static let groupId = RPCParam("groupId", .string, required: true, "The group's id (base64).")

    static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("listGroups", "The groups this account is in: none, until Parley has groups.",
                  params: [RPCParam("detailed", .boolean, "signal-cli's: members and invite links too (no effect)."),
                           RPCParam("groupId", .strings, "Only these groups.")],
                  result: "[] (signal-cli's shape: an array of group objects)") { _ in .array([]) },
        RPCMethod("quitGroup", "Leave a group: every group id is unknown, so this fails with -1 as signal-cli does.",
                  params: [groupId,
                           RPCParam("delete", .boolean, "Also delete the group's local data."),
                           RPCParam("admin", .strings, "Members to make admins before leaving.")],
                  result: "never a success: error -1 \"Failed to send to group: Group not found: ID\"") { call in
            throw unknownGroup(call.string("groupId")!)
        },
        RPCMethod("updateGroup", "Change a group (with groupId: unknown, -1 as signal-cli does) or create one (-32000).",
                  params: [RPCParam("groupId", .string, "The group's id (base64); without it, signal-cli creates a group."),
                           RPCParam("name", .string, "The group's new name."),
                           RPCParam("description", .string, "The group's new description."),
                           RPCParam("avatar", .string, "A path to the group's new avatar."),
                           RPCParam("member", .strings, "Members to add."),
                           RPCParam("removeMember", .strings, "Members to remove."),
                           RPCParam("admin", .strings, "Members to make admins."),
                           RPCParam("removeAdmin", .strings, "Admins to make members."),
                           RPCParam("banMember", .strings, "Members to ban."),
                           RPCParam("unbanMember", .strings, "Members to unban."),
                           RPCParam("link", .string, "The invite link's state."),
                           RPCParam("resetLink", .boolean, "Make a new invite link."),
                           RPCParam("expiration", .integer, "Disappearing messages' timer in seconds."),
                           RPCParam("setPermissionAddMember", .string, "Who may add members."),
                           RPCParam("setPermissionEditDetails", .string, "Who may edit the details."),
                           RPCParam("setPermissionSendMessages", .string, "Who may send messages.")],
                  result: "never a success: error -1 for a groupId, -32000 without one") { call in
            guard let id = call.string("groupId") else {
                throw RPCError(.notSupported, "updateGroup is not supported by Parley: creating groups is not served by the daemon yet")
            }
            throw unknownGroup(id)
        },
    ]

    /// signal-cli's error for a group id this account does not know. The id is echoed only after it
    /// decodes as base64, and then re-encoded from its bytes, so nothing the caller wrote is echoed raw.
    static func unknownGroup(_ text: String) -> RPCError {
        guard text.utf8.count <= 256, let bytes = Data(base64Encoded: text), !bytes.isEmpty else {
            return RPCError(.userError, "Invalid group id: not base64")
        }
        return RPCError(.userError, "Failed to send to group: Group not found: \(bytes.base64EncodedString())")
    }
}
