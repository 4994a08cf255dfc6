import ParleyCrypto
import ParleyClient
import ParleyProtocol
import ParleyStore

/// How records and events look on the wire. Names follow signal-cli's JSON-RPC where the concept is the
/// same (`receive` with an `envelope` holding `source`, `sourceDevice`, `timestamp` and a `dataMessage`,
/// `receiptMessage` or `typingMessage`), so bots port with few changes.
public enum NotificationShapes {
    public static let receive = "receive"
    public static let identityChanged = "identityChanged"
    public static let devicesChanged = "devicesChanged"
    /// Every notification method the daemon writes (the man page documents exactly these).
    public static let all = [receive, identityChanged, devicesChanged]

    /// A stored incoming message, as the `receive` notification's params.
    public static func message(_ m: MessageRecord, account: String, subscription: Int) -> JSONValue {
        [
            "account": .string(account),
            "subscription": .from(subscription),
            "envelope": [
                "source": .string(m.sender.address),
                "sourceDevice": .from(m.sender.deviceId),
                "timestamp": .from(m.sentAt),
                "serverReceivedTimestamp": .from(m.receivedAt),
                "dataMessage": dataMessage(m),
            ],
        ]
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

    public static func receipt(from sender: String, read: Bool, ids: [[UInt8]], timestamps: [UInt64], now: UInt64,
                               account: String, subscription: Int) -> JSONValue {
        [
            "account": .string(account),
            "subscription": .from(subscription),
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

    /// Another device of this account read messages of `conversation` (signal-cli's syncMessage.readMessages).
    public static func readElsewhere(sender: String, ids: [[UInt8]], timestamps: [UInt64], now: UInt64,
                                     account: String, subscription: Int) -> JSONValue {
        [
            "account": .string(account),
            "subscription": .from(subscription),
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

    public static func typing(from sender: String, started: Bool, now: UInt64, account: String, subscription: Int) -> JSONValue {
        [
            "account": .string(account),
            "subscription": .from(subscription),
            "envelope": [
                "source": .string(sender),
                "timestamp": .from(now),
                "typingMessage": ["action": started ? "STARTED" : "STOPPED", "timestamp": .from(now)],
            ],
        ]
    }

    public static func contact(_ c: Contact) -> JSONValue {
        [
            "address": .string(c.address),
            "name": .string(c.displayName),
            "trustLevel": .string(trustLevel(c.trust)),
            "devices": .from(c.account.deviceList?.devices.count ?? 0),
        ]
    }

    /// signal-cli's trust levels, where they match: TRUSTED_VERIFIED, TRUSTED_UNVERIFIED, UNTRUSTED;
    /// Parley adds CHANGED (a verified key changed: sending stopped until the user decides).
    public static func trustLevel(_ t: TrustState) -> String {
        switch t {
        case .verified: "TRUSTED_VERIFIED"
        case .unverified: "TRUSTED_UNVERIFIED"
        case .changed: "CHANGED"
        case .untrusted: "UNTRUSTED"
        }
    }

    public static func device(_ d: DeviceEntry, own: UInt32?) -> JSONValue {
        var out: [String: JSONValue] = [
            "id": .from(d.deviceId),
            "identityKey": .hex(d.identityKey.bytes),
            "created": .from(d.createdAt),
        ]
        if let own { out["thisDevice"] = .bool(d.deviceId == own) }
        return .object(out)
    }

    public static func history(_ m: MessageRecord) -> JSONValue {
        [
            "id": .hex(m.clientMessageId),
            "conversation": .string(m.conversation.description),
            "source": .string(m.sender.address),
            "sourceDevice": .from(m.sender.deviceId),
            "direction": .string(direction(m.direction)),
            "timestamp": .from(m.sentAt),
            "receivedTimestamp": .from(m.receivedAt),
            "message": .string(m.text),
            "state": .string("\(m.state)"),
            "attachment": m.attachment.map { .string($0.fileName) } ?? .null,
            "replyTo": m.replyTo.map { .hex($0) } ?? .null,
        ]
    }

    static func direction(_ d: MessageDirection) -> String {
        switch d {
        case .incoming: "incoming"
        case .outgoing: "outgoing"
        case .system: "system"
        }
    }
}
