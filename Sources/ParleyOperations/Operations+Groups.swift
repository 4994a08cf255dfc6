import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore

/// Groups: create, list, show, add, remove, leave, rename, and send to one. The CLI (`parley group …`,
/// `parley send --group`) and the daemon (signal-cli's updateGroup, listGroups, quitGroup, send with
/// groupId) are adapters over these. The administrator's require_verified applies to every member: a
/// group message reaches each of them.
extension Operations {
    /// The group `text` names: its id as 64 hex digits (as `parley group list` shows it, with or without the
    /// `group:` prefix) or as base64 (signal-cli's groupId). Anything else is invalid input.
    public func groupId(_ text: String) throws -> GroupId {
        let bare = text.hasPrefix("group:") ? String(text.dropFirst("group:".count)) : text
        if let id = GroupId(hex: bare) { return id }
        if text.utf8.count <= 64, let bytes = Data(base64Encoded: text), let id = try? GroupId([UInt8](bytes)) { return id }
        throw OperationError.invalidInput("\(PeerText.forTerminal(String(text.prefix(80)))) is not a group id (64 hex digits, or base64)")
    }

    public func createGroup(name: String, members: [AccountAddress]) async throws -> GroupResult {
        guard !PeerText.forName(name).isEmpty else { throw OperationError.invalidInput("a group needs a name") }
        for member in members { try checkPolicyAllowsSending(to: member) }
        return GroupResult(try await engine.createGroup(name: name, members: members))
    }

    public func listGroups() throws -> [GroupResult] { try engine.groups().map(GroupResult.init) }

    public func showGroup(_ id: GroupId) throws -> GroupResult { GroupResult(try engine.group(id)) }

    public func addToGroup(_ id: GroupId, members: [AccountAddress]) async throws -> GroupResult {
        guard !members.isEmpty else { throw OperationError.invalidInput("name at least one member to add") }
        for member in members { try checkPolicyAllowsSending(to: member) }
        try checkPolicyAllowsSending(toGroup: id)
        return GroupResult(try await engine.addMembers(members, to: id))
    }

    public func removeFromGroup(_ id: GroupId, members: [AccountAddress]) async throws -> GroupResult {
        guard !members.isEmpty else { throw OperationError.invalidInput("name at least one member to remove") }
        return GroupResult(try await engine.removeMembers(members, from: id))
    }

    public func leaveGroup(_ id: GroupId) async throws -> GroupResult {
        try await engine.leaveGroup(id)
        return GroupResult(try engine.group(id))
    }

    public func renameGroup(_ id: GroupId, to name: String) async throws -> GroupResult {
        guard !PeerText.forName(name).isEmpty else { throw OperationError.invalidInput("a group needs a name") }
        try checkPolicyAllowsSending(toGroup: id)
        return GroupResult(try await engine.renameGroup(id, to: name))
    }

    /// Sends `text` to every device of the group (the user's own other devices included): with
    /// `attachment` (a path or an RFC 2397 `data:` URI) one file, uploaded once, `text` its caption; with
    /// `replyTo` as a reply to a message of the group.
    public func sendToGroup(_ id: GroupId, text: String, attachment: String? = nil, replyTo: ReplyTarget? = nil) async throws -> GroupSendResult {
        guard !text.isEmpty || attachment != nil else { throw OperationError.invalidInput("the message is empty") }
        if let attachment, DataURI.isDataURI(attachment) {
            let inline = try DataURI.parse(attachment)
            return try await inline.withTemporaryFile { path in try await sendToGroup(id, text: text, attachment: path, replyTo: replyTo) }
        }
        if let file = attachment { try checkPolicyAllowsAttaching(file) }
        try checkPolicyAllowsSending(toGroup: id)
        let quoted = try replyTo.map { try replyTarget($0, in: ConversationId.group(id)) }
        let record = if let file = attachment {
            try await engine.sendAttachment(file: file, toGroup: id, caption: text.isEmpty ? nil : text, replyTo: quoted)
        } else {
            try await engine.send(text: text, toGroup: id, replyTo: quoted)
        }
        return GroupSendResult(groupId: id.hex, id: MessageId.hexOrEmpty(record.clientMessageId), timestamp: record.sentAt, state: "\(record.state)")
    }

    /// require_verified, for every other account in the group.
    public func checkPolicyAllowsSending(toGroup id: GroupId) throws {
        let own = engine.ownAddress.description
        for account in try engine.group(id).accounts where account != own {
            guard let address = try? AccountAddress(account) else { continue }
            try checkPolicyAllowsSending(to: address)
        }
    }
}

/// A group as `parley group list|show --json` and the daemon's listGroups give it.
public struct GroupResult: Codable, Sendable, Equatable {
    /// 64 hex digits (`parley send --group ID`); `base64Id` is the same id as signal-cli writes it.
    public let id: String
    public let base64Id: String
    /// Neutralised: the members chose it.
    public let name: String
    /// The member accounts, each once.
    public let members: [String]
    /// Every member device (each is a leaf of the group).
    public let devices: Int
    public let epoch: UInt64
    /// False once this device left or was removed.
    public let active: Bool

    init(_ record: GroupRecord) {
        id = record.id.hex
        base64Id = Data(record.id.bytes).base64EncodedString()
        name = PeerText.forName(record.name)
        members = record.accounts
        devices = record.members.count
        epoch = record.epoch
        active = record.active
    }
}

/// What `parley send --group` and a send with groupId give.
public struct GroupSendResult: Codable, Sendable, Equatable {
    public let groupId: String
    public let id: String
    public let timestamp: UInt64
    public let state: String
}

extension MessageId {
    static func hexOrEmpty(_ bytes: [UInt8]) -> String { (try? MessageId(bytes))?.hex ?? "" }
}
