import Foundation
import ParleyCrypto
import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// What the methods work on: the account's engine and the daemon's subscriptions.
public struct HeadlessContext: Sendable {
    public let engine: Engine
    public let hub: NotificationHub
    public let account: String

    public init(engine: Engine, hub: NotificationHub, account: String) {
        self.engine = engine
        self.hub = hub
        self.account = account
    }
}

/// The method table of `parley daemon`. Names and parameters follow signal-cli's JSON-RPC where the
/// concept is the same; man/parley-jsonrpc.5 documents each entry (checked by a test).
public enum HeadlessMethods {
    typealias Call = RPCCall<HeadlessContext>
    static let recipient = RPCParam("recipient", .string, required: true, "The contact's address, NAME@HOST:PORT.")

    public static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("send", "Send a text message (or a file with a caption), optionally as a reply, to one or more contacts.",
                  params: [RPCParam("recipient", .strings, required: true, "One address or an array of addresses."),
                           RPCParam("message", .string, "The text (required without attachments; else the caption)."),
                           RPCParam("attachments", .strings, "A file path, or an array with one file path."),
                           RPCParam("replyTo", .string, "The id of the message this one replies to."),
                           RPCParam("quoteTimestamp", .integer, "Reply to the message with this timestamp (signal-cli's name)."),
                           RPCParam("quoteAuthor", .string, "The author of the quoted message (default: the recipient).")],
                  result: "{timestamp, id, results: [{recipient, id, timestamp, state, type}]}", handler: send),
        RPCMethod("sendReceipt", "Send a read (or delivery) receipt for messages from a contact.",
                  params: [recipient,
                           RPCParam("targetTimestamp", .integers, "Timestamps of the contact's messages (their dataMessage.timestamp)."),
                           RPCParam("messageId", .strings, "Ids of the contact's messages (their dataMessage.id), as hex."),
                           RPCParam("type", .string, "\"read\" (default) or \"delivered\".")],
                  result: "{recipient, messageIds}", handler: sendReceipt),
        RPCMethod("sendTyping", "Tell contacts that you started (or stopped) typing.",
                  params: [RPCParam("recipient", .strings, required: true, "One address or an array of addresses."),
                           RPCParam("stop", .boolean, "true: stopped typing (default false).")],
                  result: "{}", handler: sendTyping),
        RPCMethod("listContacts", "List the contacts.", result: "[{address, name, trustLevel, devices}]") { call in
            .array(try call.context.engine.store.contacts().map(NotificationShapes.contact))
        },
        RPCMethod("addContact", "Look an account up on its relay and add it as a contact (its key trusted on first use).",
                  params: [recipient], result: "{address, name, trustLevel, devices}") { call in
            let address = try parseAddress(call.string("recipient")!)
            return NotificationShapes.contact(try await call.context.engine.addContact(address))
        },
        RPCMethod("listIdentities", "List the contacts' identity keys, trust levels and safety numbers.",
                  params: [RPCParam("recipient", .string, "Only this contact.")],
                  result: "[{address, trustLevel, accountKey, safetyNumber, scannableSafetyNumber}]", handler: listIdentities),
        RPCMethod("verify", "Show the safety number with a contact, or compare the contact's and mark them verified on a match.",
                  params: [recipient,
                           RPCParam("safetyNumber", .string, "The contact's 60 digits (spaces allowed)."),
                           RPCParam("scannableSafetyNumber", .string, "The payload of the contact's scanned code, as hex.")],
                  result: "{address, safetyNumber, scannableSafetyNumber} or {address, result}", handler: verify),
        RPCMethod("trust", "Accept a contact's current identity key, or check the safety number and mark them verified.",
                  params: [recipient,
                           RPCParam("verifiedSafetyNumber", .string, "The 60 digits you compared: trust only if they match (verified)."),
                           RPCParam("trustAllKnownKeys", .boolean, "Accept the current key without verifying (the default).")],
                  result: "{address, trustLevel}", handler: trust),
        RPCMethod("listDevices", "List the devices of this account, or of a contact.",
                  params: [RPCParam("recipient", .string, "A contact (default: this account).")],
                  result: "[{id, identityKey, created, thisDevice}]", handler: listDevices),
        RPCMethod("getAttachment", "Download and decrypt the attachment of a message.",
                  params: [RPCParam("recipient", .string, required: true, "Who sent the message (the conversation)."),
                           RPCParam("id", .string, required: true, "The message id (dataMessage.id)."),
                           RPCParam("file", .string, "Save it to this path (mode 0600) instead of returning it.")],
                  result: "{id, filename, contentType, size, file} or {id, filename, contentType, size, data (base64)}",
                  handler: getAttachment),
        RPCMethod("search", "Search message history, newest first (case-insensitive substring).",
                  params: [RPCParam("query", .string, required: true, "The text to look for."),
                           RPCParam("recipient", .string, "Only the conversation with this contact."),
                           RPCParam("limit", .integer, "Most results (1-10000, default 50).")],
                  result: "[{id, conversation, source, sourceDevice, direction, timestamp, receivedTimestamp, message, state}]",
                  handler: search),
        RPCMethod("subscribeReceive", "Start receiving notifications on this connection; replays messages not yet delivered.",
                  params: [RPCParam("cursor", .string, "The durable cursor's name (default \"default\").")],
                  result: "the subscription id (integer)", handler: subscribe),
        RPCMethod("unsubscribeReceive", "Stop notifications on this connection; later messages wait in the store.",
                  params: [RPCParam("subscription", .integer, "The id subscribeReceive returned (default: all of this connection).")],
                  result: "true if a subscription ended", handler: unsubscribe),
        RPCMethod("version", "The daemon's version.", result: "{version}") { _ in ["version": .string(HeadlessVersion.string)] },
    ]

    // MARK: Handlers

    static func parseAddress(_ text: String) throws -> AccountAddress {
        do { return try AccountAddress(text) } catch { throw RPCError(.userError, "\(text) is not an address: \(error)") }
    }

    static func send(_ call: Call) async throws -> JSONValue {
        let text = call.string("message") ?? ""
        let attachments = call.strings("attachments")
        guard attachments.count <= 1 else { throw RPCError.invalidParams("attachments: one file per message") }
        guard !text.isEmpty || !attachments.isEmpty else { throw RPCError.invalidParams("message is empty and there is no attachment") }
        let recipients = call.strings("recipient")
        let engine = call.context.engine
        var results: [JSONValue] = []
        for recipient in recipients {
            do {
                let replyTo = try replyTarget(call, recipient: recipient)
                let record = if let file = attachments.first {
                    try await engine.sendAttachment(file: file, to: recipient, caption: text.isEmpty ? nil : text, replyTo: replyTo)
                } else {
                    try await engine.send(text: text, to: recipient, replyTo: replyTo)
                }
                results.append(sendResult(record, recipient, type: record.state == .pending ? "PENDING" : "SUCCESS"))
            } catch let error as ClientError where error.exitCode == 3 {
                // Saved in the outbox: the daemon retries it on every reconnect.
                if let conversation = try? ConversationId(destination: recipient),
                   let record = try? engine.store.messages(in: conversation, limit: 1).last, record.state == .pending {
                    results.append(sendResult(record, recipient, type: "PENDING"))
                } else if recipients.count == 1 {
                    throw error
                } else {
                    results.append(["recipient": .string(recipient), "type": "FAILURE", "error": RPCError.from(error).jsonValue])
                }
            } catch {
                if recipients.count == 1 { throw error }
                results.append(["recipient": .string(recipient), "type": "FAILURE", "error": RPCError.from(error).jsonValue])
            }
        }
        var out: [String: JSONValue] = ["results": .array(results)]
        if let first = results.first(where: { $0["id"] != nil }) {
            out["timestamp"] = first["timestamp"]
            out["id"] = first["id"]
        }
        return .object(out)
    }

    /// The message a send replies to: `replyTo` (an id), or `quoteTimestamp` looked up in the conversation.
    static func replyTarget(_ call: Call, recipient: String) throws -> [UInt8]? {
        if let text = call.string("replyTo") {
            guard let id = MessageId(hex: text) else { throw RPCError.invalidParams("replyTo is not 32 hex digits") }
            return id.bytes
        }
        guard let timestamp = call.int("quoteTimestamp") else { return nil }
        let author = call.string("quoteAuthor")
        let store = call.context.engine.store
        guard let quoted = try history(with: recipient, store).last(where: {
            $0.sentAt == UInt64(clamping: timestamp) && $0.direction != .system && (author == nil || $0.sender.address == author)
        }) else {
            throw RPCError(.userError, "no message with the timestamp \(timestamp) in the conversation with \(recipient)")
        }
        return quoted.clientMessageId
    }

    static func getAttachment(_ call: Call) async throws -> JSONValue {
        let sender = call.string("recipient")!, text = call.string("id")!
        guard let id = MessageId(hex: text)?.bytes else { throw RPCError.invalidParams("id is not 32 hex digits") }
        let engine = call.context.engine
        guard let record = try engine.store.message(sentBy: try AccountAddress(sender), clientMessageId: id)
            ?? engine.store.message(sentBy: try AccountAddress(call.context.account), clientMessageId: id) else {
            throw RPCError(.userError, "no message \(text) from \(sender)")
        }
        guard let pointer = record.attachment else { throw ClientError.noAttachment }
        var out: [String: JSONValue] = ["id": .string(text), "filename": .string(pointer.fileName),
                                        "contentType": .string(pointer.contentType), "size": .from(pointer.size)]
        if let file = call.string("file") {
            try await engine.saveAttachment(of: record, to: file)
            out["file"] = .string(file)
        } else {
            out["data"] = .string(Data(try await engine.attachmentBytes(of: record)).base64EncodedString())
        }
        return .object(out)
    }

    static func sendResult(_ record: MessageRecord, _ recipient: String, type: String) -> JSONValue {
        ["recipient": .string(recipient), "id": .hex(record.clientMessageId), "timestamp": .from(record.sentAt),
         "state": .string("\(record.state)"), "type": .string(type)]
    }

    static func sendReceipt(_ call: Call) async throws -> JSONValue {
        let recipient = call.string("recipient")!
        let read: Bool
        switch call.string("type") ?? "read" {
        case "read": read = true
        case "delivered", "delivery": read = false
        default: throw RPCError.invalidParams("type must be \"read\" or \"delivered\"")
        }
        var ids: [[UInt8]] = []
        for text in call.strings("messageId") {
            guard let id = MessageId(hex: text) else { throw RPCError.invalidParams("messageId \(text) is not 32 hex digits") }
            ids.append(id.bytes)
        }
        let timestamps = Set(call.ints("targetTimestamp").map { UInt64(clamping: $0) })
        if !timestamps.isEmpty {
            let store = call.context.engine.store
            let found = try history(with: recipient, store)
                .filter { $0.direction == .incoming && timestamps.contains($0.sentAt) }
            guard Set(found.map(\.sentAt)) == timestamps else {
                throw RPCError(.userError, "no message from \(recipient) has the timestamp \(timestamps.subtracting(found.map(\.sentAt)).sorted().map(String.init).joined(separator: ", "))")
            }
            ids += found.map(\.clientMessageId)
        }
        guard !ids.isEmpty else { throw RPCError.invalidParams("give targetTimestamp or messageId") }
        try await call.context.engine.sendReceipt(to: recipient, read: read, messageIds: ids)
        return ["recipient": .string(recipient), "messageIds": .array(ids.map { .hex($0) })]
    }

    static func sendTyping(_ call: Call) async throws -> JSONValue {
        let started = !(call.bool("stop") ?? false)
        for recipient in call.strings("recipient") { try await call.context.engine.sendTyping(to: recipient, started: started) }
        return [:]
    }

    static func listIdentities(_ call: Call) async throws -> JSONValue {
        let engine = call.context.engine
        var contacts = try engine.store.contacts()
        if let only = call.string("recipient") {
            contacts = contacts.filter { $0.address == only }
            guard !contacts.isEmpty else { throw ClientError.unknownContact(only) }
        }
        var out: [JSONValue] = []
        for contact in contacts {
            let number = try await engine.safetyNumber(with: contact.address)
            out.append(["address": .string(contact.address), "trustLevel": .string(NotificationShapes.trustLevel(contact.trust)),
                        "accountKey": .hex(contact.account.accountKey.bytes), "safetyNumber": .string(number.digits),
                        "scannableSafetyNumber": .hex(number.scannable)])
        }
        return .array(out)
    }

    static func verify(_ call: Call) async throws -> JSONValue {
        let peer = call.string("recipient")!
        let engine = call.context.engine
        let outcome: Engine.VerificationOutcome
        if let digits = call.string("safetyNumber") {
            guard call.string("scannableSafetyNumber") == nil else { throw RPCError.invalidParams("give safetyNumber or scannableSafetyNumber, not both") }
            outcome = try await engine.verify(peer, digits: digits)
        } else if let code = call.string("scannableSafetyNumber") {
            guard let bytes = Hex.decode(code) else { throw RPCError.invalidParams("scannableSafetyNumber is not hex") }
            outcome = try await engine.verify(peer, scanned: bytes)
        } else {
            let number = try await engine.safetyNumber(with: peer)
            return ["address": .string(peer), "safetyNumber": .string(number.digits), "scannableSafetyNumber": .hex(number.scannable)]
        }
        let result: String = switch outcome {
        case .verified: "verified"
        case .mismatch: "mismatch"
        case .versionMismatch: "versionMismatch"
        case .malformed: throw RPCError.invalidParams("that is not a safety number")
        }
        return ["address": .string(peer), "result": .string(result)]
    }

    static func trust(_ call: Call) async throws -> JSONValue {
        let peer = call.string("recipient")!
        let engine = call.context.engine
        if let digits = call.string("verifiedSafetyNumber") {
            guard try await engine.verify(peer, digits: digits) == .verified else {
                throw RPCError(.userError, "the safety numbers do not match: nothing was changed")
            }
        } else {
            try await engine.trust(peer)
        }
        guard let contact = try engine.store.contact(peer) else { throw ClientError.unknownContact(peer) }
        return ["address": .string(peer), "trustLevel": .string(NotificationShapes.trustLevel(contact.trust))]
    }

    static func listDevices(_ call: Call) async throws -> JSONValue {
        let engine = call.context.engine
        if let peer = call.string("recipient"), peer != call.context.account {
            guard let contact = try engine.store.contact(peer) else { throw ClientError.unknownContact(peer) }
            return .array((contact.account.deviceList?.devices ?? []).map { NotificationShapes.device($0, own: nil) })
        }
        let account = await engine.account
        return .array(account.deviceList.devices.map { NotificationShapes.device($0, own: account.device.deviceId) })
    }

    static func search(_ call: Call) async throws -> JSONValue {
        let query = call.string("query")!
        let limit = call.int("limit") ?? 50
        guard !query.isEmpty else { throw RPCError.invalidParams("query is empty") }
        guard (1...10_000).contains(limit) else { throw RPCError.invalidParams("limit must be between 1 and 10000") }
        let store = call.context.engine.store
        if let recipient = call.string("recipient") {
            guard let conversation = try? ConversationId(destination: recipient) else { return .array([]) }
            return .array(try store.search(query, in: conversation, limit: Int(limit)).map(NotificationShapes.history))
        }
        return .array(try store.search(query, limit: Int(limit)).map(NotificationShapes.history))
    }

    /// The newest 10,000 messages of the conversation with `recipient` (none when it names no account).
    private static func history(with recipient: String, _ store: EncryptedStore) throws -> [MessageRecord] {
        guard let conversation = try? ConversationId(destination: recipient) else { return [] }
        return try store.messages(in: conversation, limit: 10_000)
    }

    static func subscribe(_ call: Call) async throws -> JSONValue {
        let name = call.string("cursor") ?? "default"
        guard NotificationHub.validCursorName(name) else { throw RPCError.invalidParams("cursor must be 1-64 letters, digits, '-', '_' or '.'") }
        return .from(try await call.context.hub.subscribe(call.connection, cursorName: name))
    }

    static func unsubscribe(_ call: Call) async throws -> JSONValue {
        let id = call.int("subscription").map(Int.init)
        return .bool(await call.context.hub.unsubscribe(call.connection, id: id) > 0)
    }
}

public enum HeadlessVersion {
    public static let string = "0.1.0 (protocol v1)"
}

extension RPCError {
    var jsonValue: JSONValue { json }
}
