import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// What arrives, as JSON: the params of the daemon's `receive`, `identityChanged` and `devicesChanged`
/// notifications and, the same objects, the lines of `parley receive --json` — one function for both,
/// so the two cannot drift. The daemon adds only `subscription` (which of its subscriptions a line is for);
/// everything else is decided here.
///
/// Names follow signal-cli's JSON-RPC where the concept is the same (`receive` with an `envelope` holding
/// `source`, `sourceDevice`, `timestamp` and a `dataMessage`, `receiptMessage`, `typingMessage` or
/// `syncMessage`), so bots port with few changes.
public enum ReceivedShapes {
    public static let receive = "receive"
    public static let identityChanged = "identityChanged"
    public static let devicesChanged = "devicesChanged"

    /// The notification an engine event makes: its method and params (without `subscription`); nil for
    /// events no notification carries. `now` is when it is handled (the `timestamp` of a receipt or typing
    /// envelope, which carries no time of its own); `sentAt` finds the time of a message by its author and id.
    /// Messages: only those `deliverable` says.
    /// `names` gives a sender's nickname, if the user gave one (signal-cli's `sourceName`); `groupNames` a
    /// group's name.
    public static func notification(for event: EngineEvent, account own: AccountAddress, now: UInt64,
                                    sentAt: (AccountAddress, [UInt8]) -> UInt64?,
                                    names: (AccountAddress) -> String? = { _ in nil },
                                    groupNames: (GroupId) -> String? = { _ in nil }) -> (method: String, params: [String: JSONValue])? {
        let account = own.description
        switch event {
        case .message(let record):
            guard deliverable(record) else { return nil }
            return (receive, message(record, account: account, sourceName: (try? record.sender.account).flatMap(names),
                                     groupName: record.conversation.group.flatMap(groupNames)))
        case .messageChanged(let target, let action):
            // A contact's reaction, edit or delete; this account's own, synced from another device, is its
            // own business like the copies of what it sent.
            guard action.actor != own else { return nil }
            return (receive, changed(target, by: action, account: account,
                                     sourceName: names(action.actor)))
        case .receipt(_, let from, let read, let ids):
            let timestamps = ids.compactMap { id in sentAt(own, id) }
            return (receive, receipt(from: from.description, read: read, ids: ids, timestamps: timestamps, now: now, account: account))
        case .typing(let conversation, let from, let started):
            return (receive, typing(from: from.description, started: started, now: now, account: account, group: conversation.group))
        case .readElsewhere(let conversation, let ids):
            // signal-cli names the sender of each message read: in a direct conversation, its peer.
            let author = conversation.peer
            let read = ids.compactMap { id in author.flatMap { sentAt($0, id) }.map { (id, $0) } }
            return (receive, readElsewhere(sender: conversation.description, ids: read.map(\.0), timestamps: read.map(\.1), now: now,
                                           account: account))
        case .identityChanged(let address, let trust):
            return (identityChanged, ["account": .string(account), "address": .string(address.description), "trustLevel": .string(TrustLevel.name(trust))])
        case .devicesChanged(let address, let added, let removed, let suspicious):
            return (devicesChanged, ["account": .string(account), "address": .string(address.description), "added": .array(added.map { .from($0) }),
                                     "removed": .array(removed.map { .from($0) }), "suspicious": .bool(suspicious)])
        case .groupChanged(let id, let change):
            return (receive, groupUpdate(id, change, name: groupNames(id), now: now, account: account))
        case .undecryptable, .unverifiedSender, .discarded, .connection, .receiveFailed, .refusedByPolicy, .disappearingTimer, .expired:
            // An undecryptable message is recorded in history as a failed message, and discarded junk only
            // counted; an unverified one stays in the mailbox until its sender's relay confirms it, then
            // arrives as a message; connection changes and failed drains are the receiver's own business.
            return nil
        }
    }

    /// Messages from others, decrypted and filed. Outgoing history, copies of what this account sent
    /// from its other devices, system notices and undecryptable records are not notifications.
    public static func deliverable(_ m: MessageRecord) -> Bool {
        m.direction == .incoming && m.state == .received && m.sender.deviceId != 0
    }

    /// A stored incoming message, as the `receive` notification's params; `sourceName` is the sender's
    /// nickname (neutralised again here; left out when there is none), `source` stays the address.
    /// `groupName` is the name of the group a group message was sent in.
    public static func message(_ m: MessageRecord, account: String, sourceName: String? = nil, groupName: String? = nil) -> [String: JSONValue] {
        var data = dataMessage(m)
        if let id = m.conversation.group, case .object(var fields) = data {
            fields["groupInfo"] = groupInfo(id, name: groupName, type: "DELIVER")
            data = .object(fields)
        }
        var envelope: [String: JSONValue] = [
            "source": .string(m.sender.address),
            "sourceDevice": .from(m.sender.deviceId),
            "timestamp": .from(m.sentAt),
            "serverReceivedTimestamp": .from(m.receivedAt),
            "dataMessage": data,
        ]
        if let name = sourceName.map(PeerText.forName), !name.isEmpty { envelope["sourceName"] = .string(name) }
        return ["account": .string(account), "envelope": .object(envelope)]
    }

    /// signal-cli's `dataMessage.groupInfo`: the group's id as base64, its name (neutralised; left out while
    /// this device has none), and `type`: DELIVER for a message sent in the group, UPDATE for a change.
    public static func groupInfo(_ id: GroupId, name: String?, type: String, revision: UInt64? = nil) -> JSONValue {
        var info: [String: JSONValue] = ["groupId": .string(Data(id.bytes).base64EncodedString()), "type": .string(type)]
        if let name = name.map(PeerText.forName), !name.isEmpty { info["groupName"] = .string(name) }
        if let revision { info["revision"] = .from(revision) }
        return .object(info)
    }

    /// A group changed (signal-cli's group UPDATE): `dataMessage` without a message, its `groupInfo` of type
    /// UPDATE, and what changed in Parley's `groupChange` {type: JOINED (this device was added), MEMBERS
    /// (with `added` and `removed` accounts), RENAMED (with `name`) or ENDED (this device left or was
    /// removed)}. Who made the change is not known here, so there is no `source`; `timestamp` is when it
    /// was handled.
    public static func groupUpdate(_ id: GroupId, _ change: GroupChange, name: String?, now: UInt64, account: String) -> [String: JSONValue] {
        var detail: [String: JSONValue]
        var name = name
        switch change {
        case .joined: detail = ["type": "JOINED"]
        case .members(let added, let removed):
            detail = ["type": "MEMBERS", "added": .array(added.map { .string($0.description) }),
                      "removed": .array(removed.map { .string($0.description) })]
        case .renamed(let newName):
            name = newName
            detail = ["type": "RENAMED", "name": .string(PeerText.forName(newName))]
        case .ended: detail = ["type": "ENDED"]
        }
        return [
            "account": .string(account),
            "envelope": [
                "timestamp": .from(now),
                "dataMessage": ["timestamp": .from(now), "message": nil, "groupInfo": groupInfo(id, name: name, type: "UPDATE"),
                                "groupChange": .object(detail)],
            ],
        ]
    }

    /// The nickname the user gave `contact`, neutralised, or nil.
    public static func nickname(_ contact: Contact?) -> String? {
        guard let name = contact.map({ PeerText.forName($0.nickname) }), !name.isEmpty else { return nil }
        return name
    }

    /// signal-cli's dataMessage: message, timestamp, attachments [{contentType, filename, size}], quote {id}.
    static func dataMessage(_ m: MessageRecord) -> JSONValue {
        var data: [String: JSONValue] = ["id": .hex(m.clientMessageId), "message": .string(m.text), "timestamp": .from(m.sentAt)]
        if let pointer = m.attachment {
            data["attachments"] = [["contentType": .string(pointer.contentType), "filename": .string(pointer.fileName),
                                    "size": .from(pointer.size)]]
        }
        if let replyTo = m.replyTo { data["quote"] = ["id": .hex(replyTo)] }
        return .object(data)
    }

    /// A reaction, an edit or a delete as signal-cli gives it: `dataMessage.reaction` {emoji, targetAuthor,
    /// targetAuthorNumber, targetSentTimestamp, isRemove}, `dataMessage.remoteDelete` {timestamp}, or
    /// `editMessage` {targetSentTimestamp, dataMessage}. Emoji and texts are the peer's: the JSON line is
    /// neutralised as a whole where it is printed.
    public static func changed(_ target: MessageRecord, by action: MessageAction, account: String,
                               sourceName: String? = nil) -> [String: JSONValue] {
        var envelope: [String: JSONValue] = [
            "source": .string(action.actor.description),
            "timestamp": .from(action.at),
        ]
        switch action.change {
        case .react(let emoji, let remove):
            envelope["dataMessage"] = [
                "timestamp": .from(action.at),
                "reaction": [
                    "emoji": .string(emoji),
                    "targetAuthor": .string(action.targetAuthor.description),
                    "targetAuthorNumber": .string(action.targetAuthor.description),
                    "targetSentTimestamp": .from(target.sentAt),
                    "targetId": .hex(target.clientMessageId),
                    "isRemove": .bool(remove),
                ],
            ]
        case .edit(let text):
            var data: [String: JSONValue] = ["id": .hex(target.clientMessageId), "message": .string(text), "timestamp": .from(action.at)]
            if let id = action.conversation.group { data["groupInfo"] = groupInfo(id) }
            envelope["editMessage"] = ["targetSentTimestamp": .from(target.sentAt), "dataMessage": .object(data)]
        case .delete:
            envelope["dataMessage"] = [
                "timestamp": .from(action.at),
                "remoteDelete": ["timestamp": .from(target.sentAt), "id": .hex(target.clientMessageId)],
            ]
        }
        // In a group, the reaction or delete says which group, as signal-cli's dataMessage does.
        if let id = action.conversation.group, case .object(var data)? = envelope["dataMessage"] {
            data["groupInfo"] = groupInfo(id)
            envelope["dataMessage"] = .object(data)
        }
        if let name = sourceName.map(PeerText.forName), !name.isEmpty { envelope["sourceName"] = .string(name) }
        return ["account": .string(account), "envelope": .object(envelope)]
    }

    /// signal-cli's groupInfo of a group's content: the group's id as base64, type DELIVER.
    static func groupInfo(_ id: GroupId) -> JSONValue {
        ["groupId": .string(Data(id.bytes).base64EncodedString()), "type": "DELIVER"]
    }

    public static func receipt(from sender: String, read: Bool, ids: [[UInt8]], timestamps: [UInt64], now: UInt64,
                               account: String) -> [String: JSONValue] {
        [
            "account": .string(account),
            "envelope": [
                "source": .string(sender),
                "timestamp": .from(now),
                "receiptMessage": [
                    "type": read ? "READ" : "DELIVERY",
                    "isDelivery": .bool(!read),
                    "isRead": .bool(read),
                    "when": .from(now),
                    "messageIds": .array(ids.map { .hex($0) }),
                    "timestamps": .array(timestamps.map { .from($0) }),
                ],
            ],
        ]
    }

    /// Another device of this account read messages of a conversation (signal-cli's syncMessage.readMessages).
    public static func readElsewhere(sender: String, ids: [[UInt8]], timestamps: [UInt64], now: UInt64,
                                     account: String) -> [String: JSONValue] {
        [
            "account": .string(account),
            "envelope": [
                "source": .string(account),
                "timestamp": .from(now),
                "syncMessage": [
                    "readMessages": .array(zip(ids, timestamps).map { id, timestamp in
                        ["sender": .string(sender), "id": .hex(id), "timestamp": .from(timestamp)]
                    }),
                ],
            ],
        ]
    }

    /// signal-cli's typingMessage; in a group with its `groupId` (base64).
    public static func typing(from sender: String, started: Bool, now: UInt64, account: String, group: GroupId? = nil) -> [String: JSONValue] {
        var typing: [String: JSONValue] = ["action": started ? "STARTED" : "STOPPED", "timestamp": .from(now)]
        if let group { typing["groupId"] = .string(Data(group.bytes).base64EncodedString()) }
        return [
            "account": .string(account),
            "envelope": [
                "source": .string(sender),
                "timestamp": .from(now),
                "typingMessage": .object(typing),
            ],
        ]
    }
}
