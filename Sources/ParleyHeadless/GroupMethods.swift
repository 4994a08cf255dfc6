import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore

/// signal-cli's group methods — updateGroup, listGroups, quitGroup, and send with groupId — each an adapter
/// over the group operations (Operations+Groups.swift). Group ids are signal-cli's base64 (Parley's 64 hex
/// digits are accepted too). What Parley's groups have no equivalent for (avatars, descriptions, admins, bans,
/// invite links, permissions) is refused with -32000 before anything is done, never ignored: a success would
/// promise a change that did not happen.
enum GroupMethods {
    typealias Call = RPCCall<HeadlessContext>

    static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("listGroups", "The groups this account is in or was in, as signal-cli's group objects.",
                  params: [RPCParam("groupId", .strings, "Only these groups (base64; ids of no group of this account are left out)."),
                           RPCParam("groupIds", .strings, "The same as groupId (signal-cli accepts both)."),
                           RPCParam("detailed", .boolean, "Accepted as signal-cli's; the JSON always has the members.")],
                  result: "[{id, name, description, isMember, isBlocked, messageExpirationTime, members: [{number, uuid, isAdmin}], "
                      + "pendingMembers, requestingMembers, admins, banned, permissionAddMember, permissionEditDetails, "
                      + "permissionSendMessage, groupInviteLink}]", handler: listGroups),
        RPCMethod("quitGroup", "Leave a group: this account's other devices are removed and this one asks to be; the history is kept.",
                  params: [RPCParam("groupId", .string, required: true, "The group's id (base64)."),
                           RPCParam("delete", .boolean, "signal-cli's: also delete the local data (true is refused: Parley keeps the history)."),
                           RPCParam("admin", .strings, "signal-cli's: members to make admins (refused: Parley groups have no admins).")],
                  result: "{timestamp, results: [{recipient, groupId, type}]} ([] results for a group already left)", handler: quitGroup),
        RPCMethod("updateGroup", "Create a group (without groupId), or rename it, add and remove members.",
                  params: [RPCParam("groupId", .string, "The group's id (base64); without it a group is created."),
                           RPCParam("name", .string, "The group's name (required to create one)."),
                           RPCParam("member", .strings, "Contacts to add (every device of each)."),
                           RPCParam("members", .strings, "The same as member (signal-cli accepts both)."),
                           RPCParam("removeMember", .strings, "Members to remove (every device of each)."),
                           RPCParam("removeMembers", .strings, "The same as removeMember.")]
                      + refusedUpdates.map { RPCParam($0.name, $0.type, "signal-cli's; refused with -32000: \($0.reason).") },
                  result: "{groupId (when created), timestamp, results: [{recipient, groupId, type}]}", handler: updateGroup),
    ]

    /// updateGroup's parameters Parley cannot honour, with the reason the refusal gives.
    static let refusedUpdates: [(name: String, type: ParamType, reason: String)] = [
        ("description", .string, "Parley groups have a name only"),
        ("avatar", .string, "Parley has no avatars"),
        ("admin", .strings, "Parley groups have no admins: every member may change the group"),
        ("removeAdmin", .strings, "Parley groups have no admins: every member may change the group"),
        ("ban", .strings, "Parley groups have no ban list"),
        ("unban", .strings, "Parley groups have no ban list"),
        ("link", .string, "Parley groups have no invite links"),
        ("resetLink", .boolean, "Parley groups have no invite links"),
        ("setPermissionAddMember", .string, "every member of a Parley group may add members"),
        ("setPermissionEditDetails", .string, "every member of a Parley group may rename it"),
        ("setPermissionSendMessages", .string, "every member of a Parley group may send"),
        ("memberLabel", .string, "Parley groups have no member labels"),
        ("memberLabelEmoji", .string, "Parley groups have no member labels"),
        ("expiration", .integer, "a group's disappearing-message timer is not served by the daemon yet"),
    ]

    // MARK: Handlers

    static func listGroups(_ call: Call) async throws -> JSONValue {
        let operations = HeadlessMethods.ops(call)
        let wanted = try (call.strings("groupId") + call.strings("groupIds")).compactMap { try parse($0) }
        var groups = try operations.listGroups()
        if !wanted.isEmpty {
            let ids = Set(wanted.map(\.hex))
            groups = groups.filter { ids.contains($0.id) }
        }
        return .array(groups.map(signalGroup))
    }

    static func quitGroup(_ call: Call) async throws -> JSONValue {
        if call.bool("delete") == true {
            throw RPCError(.notSupported, "quitGroup with delete is not supported by Parley: a group's history is kept after leaving (delete messages with their own methods)")
        }
        if !call.strings("admin").isEmpty {
            throw RPCError(.notSupported, "quitGroup with admin is not supported by Parley: Parley groups have no admins")
        }
        let operations = HeadlessMethods.ops(call)
        let (id, group) = try existing(call.string("groupId")!, operations)
        // signal-cli answers a group already left with success and sends nothing.
        guard group.active else { return ["results": []] }
        let left = try await mapped { try await operations.leaveGroup(id) }
        return changed(left, account: call.context.account)
    }

    static func updateGroup(_ call: Call) async throws -> JSONValue {
        // Everything is checked before anything is done: a refused or malformed parameter changes nothing.
        if let refused = refusedUpdates.first(where: { call.params[$0.name] != nil && call.params[$0.name] != .bool(false) }) {
            throw RPCError(.notSupported, "updateGroup with \(refused.name) is not supported by Parley: \(refused.reason)")
        }
        let operations = HeadlessMethods.ops(call)
        let adding = try call.contacts("member", resolve: operations.resolve) + call.contacts("members", resolve: operations.resolve)
        let removing = try call.contacts("removeMember", resolve: operations.resolve) + call.contacts("removeMembers", resolve: operations.resolve)
        let name = call.string("name")
        if let name, PeerText.forName(name).isEmpty { throw RPCError.invalidParams("name: a group needs a name (not empty, not only control characters)") }

        guard let text = call.string("groupId") else {
            guard let name else { throw RPCError.invalidParams("name is required to create a group (updateGroup without groupId)") }
            guard removing.isEmpty else { throw RPCError.invalidParams("removeMember: a new group has no members to remove") }
            for member in adding { try operations.checkPolicyAllowsSending(to: member) }
            // Created, then joined by its members: when adding them fails (a member without KeyPackages, the
            // relay gone), the group exists with this account alone, and the error says which it is.
            let created = try await operations.createGroup(name: name, members: [])
            var group = created
            if !adding.isEmpty {
                do { group = try await operations.addToGroup(try operations.groupId(created.id), members: adding) } catch {
                    let failure = RPCError.from(error)
                    throw RPCError(failure.code, "\(failure.message) (the group was created without its members: groupId \(created.base64Id))",
                                   data: ["groupId": .string(created.base64Id)])
                }
            }
            var result = changed(group, account: call.context.account).objectValue ?? [:]
            result["groupId"] = .string(created.base64Id)
            return .object(result)
        }
        let (id, group) = try existing(text, operations)
        guard group.active else { throw notAMember(group) }
        guard name != nil || !adding.isEmpty || !removing.isEmpty else {
            throw RPCError.invalidParams("nothing to change: give name, member or removeMember")
        }
        let current = Set(group.members)
        if let absent = removing.first(where: { !current.contains($0.description) }) {
            throw RPCError(.userError, "\(PeerText.forTerminal(absent.description)) is not in the group")
        }
        if removing.contains(call.context.account) { throw RPCError.invalidParams("removeMember: to leave the group, call quitGroup") }
        // Members already in the group are not added again (signal-cli ignores them too).
        let newcomers = adding.filter { !current.contains($0.description) }
        for member in newcomers { try operations.checkPolicyAllowsSending(to: member) }
        if !newcomers.isEmpty || name != nil { try operations.checkPolicyAllowsSending(toGroup: id) }

        var result = group
        try await mapped {
            if !newcomers.isEmpty { result = try await operations.addToGroup(id, members: newcomers) }
            if !removing.isEmpty { result = try await operations.removeFromGroup(id, members: removing) }
            if let name { result = try await operations.renameGroup(id, to: name) }
        }
        return changed(result, account: call.context.account)
    }

    /// send with groupId: the text to every device of the group. Attachments, replies and edits in groups
    /// are not served by the daemon yet, and refused before anything is sent.
    static func send(_ call: Call) async throws -> JSONValue {
        let ids = call.strings("groupId")
        guard ids.count == 1 else { throw RPCError.invalidParams("groupId: one group per send") }
        let parts = try HeadlessMethods.sendParts(call)
        guard !parts.text.isEmpty || parts.attachment != nil else { throw RPCError.invalidParams("message or attachment is required") }
        let operations = HeadlessMethods.ops(call)
        let (id, group) = try existing(ids[0], operations)
        guard group.active else { throw notAMember(group) }
        if let edited = parts.edited {
            return try HeadlessMethods.json([try await mapped { try await operations.edit(in: .group(id), edited, text: parts.text) }])
        }
        let sent = try await mapped {
            try await operations.sendToGroup(id, text: parts.text, attachment: parts.attachment, replyTo: parts.replyTo)
        }
        let type = sent.state == "sent" ? "SUCCESS" : "PENDING"
        let others = group.members.filter { $0 != call.context.account.description }
        return [
            "timestamp": .from(sent.timestamp),
            "id": .string(sent.id),
            "groupId": .string(group.base64Id),
            "results": .array(others.map { member in
                ["recipient": .string(member), "groupId": .string(group.base64Id), "id": .string(sent.id),
                 "timestamp": .from(sent.timestamp), "state": .string(sent.state), "type": .string(type)]
            }),
        ]
    }

    // MARK: Shapes

    /// signal-cli's group object (ListGroupsCommand's JsonGroup), filled with what Parley knows: every
    /// member may do what signal-cli reserves for admins, so there are no admins and every permission is
    /// EVERY_MEMBER; Parley has no uuids (null), pending or requesting members, bans or invite links.
    static func signalGroup(_ group: GroupResult) -> JSONValue {
        [
            "id": .string(group.base64Id),
            "name": .string(PeerText.forName(group.name)),
            "description": "",
            "isMember": .bool(group.active),
            "isBlocked": false,
            "messageExpirationTime": 0,
            "members": .array(group.members.map { ["number": .string($0), "uuid": nil, "isAdmin": false] }),
            "pendingMembers": [], "requestingMembers": [], "admins": [], "banned": [],
            "permissionAddMember": "EVERY_MEMBER", "permissionEditDetails": "EVERY_MEMBER", "permissionSendMessage": "EVERY_MEMBER",
            "groupInviteLink": nil,
        ]
    }

    /// The result of a change: when it was made, and one SUCCESS per other member account (the relay took
    /// it for every device of the group, or the operation would have failed).
    static func changed(_ group: GroupResult, account: AccountAddress) -> JSONValue {
        let others = group.members.filter { $0 != account.description }
        return [
            "timestamp": .from(SystemWallClock().nowMilliseconds()),
            "results": .array(others.map { ["recipient": .string($0), "groupId": .string(group.base64Id), "type": "SUCCESS"] }),
        ]
    }

    // MARK: Group ids and errors

    /// A groupId parameter as a group id: base64 (signal-cli's) or 64 hex digits; nil for base64 of another
    /// length than Parley's ids (signal-cli's older ids are 16 bytes), which names no group here. Text that
    /// is neither is signal-cli's "Invalid group id" (-1), and is never echoed.
    static func parse(_ text: String) throws -> GroupId? {
        if let id = GroupId(hex: text.hasPrefix("group:") ? String(text.dropFirst("group:".count)) : text) { return id }
        guard let bytes = base64(text) else { throw RPCError(.userError, "Invalid group id: not base64") }
        return try? GroupId([UInt8](bytes))
    }

    private static func base64(_ text: String) -> Data? {
        guard text.utf8.count <= 256, let bytes = Data(base64Encoded: text), !bytes.isEmpty else { return nil }
        return bytes
    }

    /// The group `text` names, as this account knows it (also once left), or signal-cli's errors: a
    /// well-formed id of no group this account knows is "Group not found", the id re-encoded from its bytes.
    static func existing(_ text: String, _ operations: Operations) throws -> (id: GroupId, group: GroupResult) {
        guard let id = try parse(text) else { throw unknownGroup(base64(text) ?? Data()) }
        do { return (id, try operations.showGroup(id)) } catch ClientError.unknownGroup { throw unknownGroup(Data(id.bytes)) }
    }

    /// signal-cli's error for a group id this account does not know.
    static func unknownGroup(_ bytes: Data) -> RPCError {
        RPCError(.userError, "Failed to send to group: Group not found: \(bytes.base64EncodedString())")
    }

    /// The same for an id given as text (GroupTargets): re-encoded from its bytes, never echoed raw.
    static func unknownGroup(_ text: String) -> RPCError {
        guard let bytes = base64(text) else { return RPCError(.userError, "Invalid group id: not base64") }
        return unknownGroup(bytes)
    }

    /// signal-cli's error for a group this account left or was removed from.
    static func notAMember(_ group: GroupResult) -> RPCError {
        RPCError(.userError, "User is not a member in group: \(PeerText.forName(group.name)) (\(group.base64Id))")
    }

    /// Runs operations on a group that exists; the engine's "no group" (the group was left meanwhile) as
    /// signal-cli's error.
    @discardableResult
    static func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch ClientError.unknownGroup(let hex) {
            throw unknownGroup(Data(GroupId(hex: hex)?.bytes ?? []))
        }
    }
}
