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
}
