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
    public let account: AccountAddress
    /// Every account the daemon serves (listAccounts).
    public let served: [String]

    public init(engine: Engine, hub: NotificationHub, account: AccountAddress, served: [String]? = nil) {
        self.engine = engine
        self.hub = hub
        self.account = account
        self.served = served ?? [account.description]
    }
}

/// The method table of `parley daemon`. Names and parameters follow signal-cli's JSON-RPC where the
/// concept is the same; man/parley-jsonrpc.5 documents each entry (checked by a test).
public enum HeadlessMethods {
    typealias Call = RPCCall<HeadlessContext>
    static let recipient = RPCParam("recipient", .string, required: true, "The contact's address, NAME@HOST:PORT.")

    public static let table: [RPCMethod<HeadlessContext>] = [
        RPCMethod("send", "Send a text message (or a file with a caption), optionally as a reply, to one or more contacts or to a group.",
                  params: [RPCParam("recipient", .strings, "One contact or an array: an address, a nickname or a unique local part (required without groupId)."),
                           RPCParam("groupId", .strings, "A group's id (base64) instead of recipient: the message (text, attachment, reply, or an edit) to every member."),
                           RPCParam("message", .string, "The text (required without attachments; else the caption)."),
                           RPCParam("attachments", .strings, "A file path or RFC 2397 data: URI, or an array with one."),
                           RPCParam("attachment", .strings, "The same as attachments (signal-cli accepts both names)."),
                           RPCParam("replyTo", .string, "The id of the message this one replies to."),
                           RPCParam("quoteTimestamp", .integer, "Reply to the message with this timestamp (signal-cli's name)."),
                           RPCParam("quoteAuthor", .string, "The author of the quoted message (default: the recipient)."),
                           RPCParam("editTimestamp", .integer, "Edit your message with this timestamp: message is its new text (signal-cli's name).")],
                  result: "{timestamp, id, results: [{recipient, id, timestamp, state, type}]} (with groupId: also groupId, in each result too)", handler: send),
        RPCMethod("sendReceipt", "Send a read (or delivery) receipt for messages from a contact, or of a group (one group message every member sees).",
                  params: [RPCParam("recipient", .string, "The contact's address, NAME@HOST:PORT (or give groupId)."),
                           RPCParam("groupId", .string, "The group (base64 as signal-cli writes it, or hex), instead of recipient."),
                           RPCParam("targetTimestamp", .integers, "Timestamps of the contact's messages (their dataMessage.timestamp)."),
                           RPCParam("messageId", .strings, "Ids of the contact's messages (their dataMessage.id), as hex."),
                           RPCParam("type", .string, "\"read\" (default) or \"delivered\".")],
                  result: "{recipient, messageIds}", handler: sendReceipt),
        RPCMethod("sendTyping", "Tell contacts, or a group's members, that you started (or stopped) typing.",
                  params: [RPCParam("recipient", .strings, "One address or an array of addresses (or give groupId)."),
                           RPCParam("groupId", .string, "The group (base64 as signal-cli writes it, or hex), instead of recipient."),
                           RPCParam("stop", .boolean, "true: stopped typing (default false).")],
                  result: "{recipients, stop}", handler: sendTyping),
        RPCMethod("listContacts", "List the contacts (name: the nickname you gave, or \"\").",
                  result: "[{address, name, trustLevel, devices, isBlocked}]") { call in
            try json(try ops(call).contacts())
        },
        RPCMethod("updateContact", "Give a contact a nickname (\"\" removes it), and/or set the conversation's disappearing-message timer.",
                  params: [RPCParam("recipient", .string, required: true, "The contact: address, nickname or unique local part."),
                           RPCParam("name", .string, "The nickname (controls dropped, at most 40 characters, no '@')."),
                           RPCParam("expiration", .integer, "The disappearing-message timer in seconds, 0 off (as signal-cli); set for both sides.")],
                  result: "{address, name, trustLevel, devices, isBlocked} (and expiration when it was given)") { call in
            let operations = ops(call)
            let contact = try call.contact("recipient", resolve: operations.resolve)!
            let name = call.string("name"), expiration = call.int("expiration")
            guard name != nil || expiration != nil else { throw RPCError.invalidParams("name or expiration is required") }
            if let expiration {
                guard expiration >= 0, expiration <= Int64(UInt32.max) else {
                    throw RPCError.invalidParams("expiration: seconds from 0 (off) to 4294967295")
                }
                _ = try await operations.setDisappearing(contact, seconds: expiration == 0 ? nil : UInt32(expiration))
            }
            let result: JSONValue
            if let name {
                result = try json(try await operations.renameContact(contact, to: name))
            } else if let known = try operations.contacts().first(where: { $0.address == contact.description }) {
                result = try json(known)
            } else {
                result = .object(["address": .string(contact.description)])
            }
            // With a timer, the timer in force; a rename alone answers as `parley contacts rename --json` does.
            guard expiration != nil, case .object(var fields) = result else { return result }
            fields["expiration"] = .from(UInt64(try operations.disappearing(contact).expiration))
            return .object(fields)
        },
        RPCMethod("removeContact", "Forget a contact and the sessions with their devices; the conversation's history is kept.",
                  params: [RPCParam("recipient", .string, required: true, "The contact: address, nickname or unique local part.")],
                  result: "{address, name, sessionsRemoved, historyKept}") { call in
            let operations = ops(call)
            return try json(try await operations.removeContact(try call.contact("recipient", resolve: operations.resolve)!))
        },
        RPCMethod("block", "Block contacts: their messages are dropped before they are stored (still acknowledged), sending to them is refused.",
                  params: [RPCParam("recipient", .strings, required: true, "One contact or an array of contacts.")],
                  result: "[{address, name, trustLevel, devices, isBlocked}]") { call in
            let operations = ops(call)
            return try json(try await operations.setBlocked(try call.contacts("recipient", resolve: operations.resolve), true))
        },
        RPCMethod("unblock", "Unblock contacts.",
                  params: [RPCParam("recipient", .strings, required: true, "One contact or an array of contacts.")],
                  result: "[{address, name, trustLevel, devices, isBlocked}]") { call in
            let operations = ops(call)
            return try json(try await operations.setBlocked(try call.contacts("recipient", resolve: operations.resolve), false))
        },
        RPCMethod("addContact", "Look an account up on its relay and add it as a contact (its key trusted on first use).",
                  params: [recipient], result: "{address, name, trustLevel, devices}") { call in
            try json(try await ops(call).addContact(call.address("recipient")!))
        },
        RPCMethod("listIdentities", "List the contacts' identity keys, trust levels and safety numbers.",
                  params: [RPCParam("recipient", .string, "Only this contact.")],
                  result: "[{address, trustLevel, devices, accountKey, safetyNumber, scannableSafetyNumber}]", handler: listIdentities),
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
                  result: "[{id, identityKey, created, thisDevice, name}] (a contact's devices: without thisDevice and name)", handler: listDevices),
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
        RPCMethod("getUserStatus", "Whether addresses are accounts on their relays (nothing is stored; no contact is added).",
                  params: [RPCParam("recipient", .strings, required: true, "One address or an array of addresses.")],
                  result: "[{recipient, number, isRegistered}]") { call in
            try json(try await ops(call).userStatus(of: call.strings("recipient")))
        },
        RPCMethod("getPolicy", "The administrator's policy in force (parley-policy(5)), each key with its value and where it came from.",
                  result: "{file, settings: {KEY: {value, source, line}}}") { call in
            try json(PolicyShowResult(ops(call).policy))
        },
        RPCMethod("rotateKeys", "A new identity key and prekeys for this device, or (account: true) a new account key (PROTOCOL.md §3.5).",
                  params: [RPCParam("account", .boolean, "true: a new account key; contacts must verify the new safety number (default false).")],
                  result: "{rotated, device, deviceKey, previousDeviceKey, accountKey, previousAccountKey, removedDevices}") { call in
            try json(try await ops(call).rotateKeys(account: call.bool("account") ?? false))
        },
        RPCMethod("version", "The daemon's version.", result: "{version}") { _ in ["version": .string(ParleyVersion.string)] },
        RPCMethod("listAccounts", "The accounts this daemon serves (signal-cli's multi-account mode).", result: "[{number}]") { call in
            .array(call.context.served.map { ["number": .string($0)] })
        },
    ] + ActionMethods.table + GroupMethods.table

    // MARK: Handlers: parameters in, the operation, its result as JSON out.

    static func ops(_ call: Call) -> Operations { Operations(engine: call.context.engine) }

    static func json(_ value: some Encodable) throws -> JSONValue { try JSONValue(encoding: value) }

    static func send(_ call: Call) async throws -> JSONValue {
        // signal-cli (since 0.9) sends to recipients and groups in one call; Parley takes one or the other.
        if call.params["groupId"] != nil {
            guard call.params["recipient"] == nil else {
                throw RPCError.invalidParams("give recipient or groupId, not both: send to contacts and to a group in separate calls")
            }
            return try await GroupMethods.send(call)
        }
        guard call.params["recipient"] != nil else { throw RPCError.invalidParams("missing parameter recipient (string or array of strings), or groupId") }
        let parts = try sendParts(call)
        let operations = ops(call)
        if let edited = parts.edited {
            var results: [ActionResult] = []
            for recipient in try call.contacts("recipient", resolve: operations.resolve) {
                results.append(try await operations.edit(in: recipient, edited, text: parts.text))
            }
            return try json(results)
        }
        return try json(try await operations.send(.init(recipients: try call.contacts("recipient", resolve: operations.resolve),
                                                        text: parts.text, attachment: parts.attachment, replyTo: parts.replyTo)))
    }

    /// What a send says besides where it goes, read once for contacts and groups alike: its text, its one
    /// file, the message it replies to, and for an edit (editTimestamp) the own message it changes.
    struct SendParts {
        let text: String
        let attachment: String?
        let replyTo: Operations.ReplyTarget?
        let edited: Operations.MessageTarget?
    }

    static func sendParts(_ call: Call) throws -> SendParts {
        let attachments = call.strings("attachments") + call.strings("attachment")
        guard attachments.count <= 1 else { throw RPCError.invalidParams("attachments: one file per message") }
        var replyTo: Operations.ReplyTarget?
        if let text = call.string("replyTo") {
            replyTo = .id(try MessageIdText.parse(text, "replyTo"))
        } else if let timestamp = call.int("quoteTimestamp") {
            replyTo = .timestamp(UInt64(clamping: timestamp), author: try call.address("quoteAuthor"))
        }
        var edited: Operations.MessageTarget?
        if let timestamp = call.int("editTimestamp") {
            guard attachments.isEmpty, replyTo == nil, call.string("message") != nil else {
                throw RPCError.invalidParams("an edit (editTimestamp) takes only the new message text")
            }
            edited = .timestamp(UInt64(clamping: timestamp), author: call.context.account)
        }
        return SendParts(text: call.string("message") ?? "", attachment: attachments.first, replyTo: replyTo, edited: edited)
    }

    static func getAttachment(_ call: Call) async throws -> JSONValue {
        let sender = try call.address("recipient")!
        let id = try MessageIdText.parse(call.string("id")!, "id")
        if let file = call.string("file") { return try json(try await ops(call).saveAttachment(from: sender, id: id, to: file)) }
        return try json(try await ops(call).attachmentData(from: sender, id: id))
    }

    static func sendReceipt(_ call: Call) async throws -> JSONValue {
        let read: Bool
        switch call.string("type") ?? "read" {
        case "read": read = true
        case "delivered", "delivery": read = false
        default: throw RPCError.invalidParams("type must be \"read\" or \"delivered\"")
        }
        let ids = try call.strings("messageId").map { try MessageIdText.parse($0, "messageId") }
        let timestamps = call.ints("targetTimestamp").map { UInt64(clamping: $0) }
        let operations = ops(call)
        if call.string("groupId") != nil {
            guard call.string("recipient") == nil else { throw RPCError.invalidParams("give recipient or groupId, not both") }
            guard case .group(let id) = try call.conversation(operations) else { throw RPCError.invalidParams("groupId") }
            return try json(try await operations.sendReceipt(inGroup: id, read: read, messageIds: ids, timestamps: timestamps))
        }
        guard let recipient = try call.address("recipient") else { throw RPCError.invalidParams("give recipient or groupId") }
        return try json(try await operations.sendReceipt(to: recipient, read: read, messageIds: ids, timestamps: timestamps))
    }

    static func sendTyping(_ call: Call) async throws -> JSONValue {
        let operations = ops(call), stop = call.bool("stop") ?? false
        if call.string("groupId") != nil {
            guard call.strings("recipient").isEmpty else { throw RPCError.invalidParams("give recipient or groupId, not both") }
            guard case .group(let id) = try call.conversation(operations) else { throw RPCError.invalidParams("groupId") }
            return try json(try await operations.sendTyping(inGroup: id, stop: stop))
        }
        let recipients = try call.addresses("recipient")
        guard !recipients.isEmpty else { throw RPCError.invalidParams("give recipient or groupId") }
        return try json(try await operations.sendTyping(to: recipients, stop: stop))
    }

    static func listIdentities(_ call: Call) async throws -> JSONValue {
        try json(try await ops(call).identities(of: try call.address("recipient")))
    }

    static func verify(_ call: Call) async throws -> JSONValue {
        let peer = try call.address("recipient")!
        if let digits = call.string("safetyNumber") {
            guard call.string("scannableSafetyNumber") == nil else { throw RPCError.invalidParams("give safetyNumber or scannableSafetyNumber, not both") }
            return try json(try await ops(call).verify(peer, .digits(digits)))
        } else if let code = call.string("scannableSafetyNumber") {
            guard let bytes = Hex.decode(code) else { throw RPCError.invalidParams("scannableSafetyNumber is not hex") }
            return try json(try await ops(call).verify(peer, .scanned(bytes)))
        }
        return try json(try await ops(call).safetyNumber(with: peer))
    }

    static func trust(_ call: Call) async throws -> JSONValue {
        try json(try await ops(call).trust(try call.address("recipient")!, verifiedSafetyNumber: call.string("verifiedSafetyNumber")))
    }

    static func listDevices(_ call: Call) async throws -> JSONValue {
        try json(try await ops(call).devices(of: try call.address("recipient")))
    }

    static func search(_ call: Call) async throws -> JSONValue {
        let limit = call.int("limit").map { Int(clamping: $0) } ?? Operations.defaultSearchLimit
        return try json(try ops(call).search(call.string("query")!, with: try call.address("recipient"), limit: limit))
    }

    static func subscribe(_ call: Call) async throws -> JSONValue {
        guard !(call.connection is HTTPRequestPeer) else {
            throw RPCError.invalidParams("subscribeReceive is for connections that stay open: over HTTP, read GET /api/v1/events")
        }
        let name = call.string("cursor") ?? "default"
        guard NotificationHub.validCursorName(name) else { throw RPCError.invalidParams("cursor must be 1-64 letters, digits, '-', '_' or '.'") }
        return .from(try await call.context.hub.subscribe(call.connection, cursorName: name))
    }

    static func unsubscribe(_ call: Call) async throws -> JSONValue {
        let id = call.int("subscription").map(Int.init)
        return .bool(await call.context.hub.unsubscribe(call.connection, id: id) > 0)
    }
}

extension RPCCall {
    /// An address parameter, parsed here once: text that is not `NAME@HOST[:PORT]` is invalid params
    /// (-32602) naming the parameter, and nothing is tried.
    func address(_ name: String) throws(RPCError) -> AccountAddress? {
        try string(name).map { text throws(RPCError) in try Self.parse(text, name) }
    }

    /// A `string or array of strings` address parameter, each parsed as `address(_:)` does.
    func addresses(_ name: String) throws(RPCError) -> [AccountAddress] {
        var parsed: [AccountAddress] = []
        for text in strings(name) { parsed.append(try Self.parse(text, name)) }
        return parsed
    }

    /// A contact parameter: text with "@" is an address, parsed as `address(_:)` does; anything else is a
    /// short name (a nickname, or the local part of one contact's address) that `resolve`
    /// (`Operations.resolve`) turns into one.
    /// A short name that names no contact is invalid params naming the parameter, as a malformed address is.
    func contact(_ name: String, resolve: (String) throws -> AccountAddress) throws -> AccountAddress? {
        try string(name).map { text in try Self.contact(text, name, resolve) }
    }

    /// A `string or array of strings` contact parameter, each read as `contact(_:resolve:)` does.
    func contacts(_ name: String, resolve: (String) throws -> AccountAddress) throws -> [AccountAddress] {
        try strings(name).map { text in try Self.contact(text, name, resolve) }
    }

    private static func contact(_ text: String, _ name: String, _ resolve: (String) throws -> AccountAddress) throws -> AccountAddress {
        if text.contains("@") { return try parse(text, name) }
        do { return try resolve(text) } catch OperationError.invalidInput(let reason) { throw RPCError.invalidParams("\(name): \(reason)") }
    }

    private static func parse(_ text: String, _ name: String) throws(RPCError) -> AccountAddress {
        do { return try AccountAddress(text) } catch { throw .invalidParams("\(name): \(error.description)") }
    }
}
