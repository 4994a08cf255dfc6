import ArgumentParser
import Foundation
import ParleyCrypto
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyStore

// One-shot commands that mirror the daemon's methods (parley-jsonrpc(5)); with --json each prints the
// same objects the method returns, one per line.

struct ContactsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts", abstract: "List the contacts (the listContacts method).")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per contact.") var json = false

    func run() throws {
        let store = try client.openStore()
        for contact in try store.contacts() {
            if json { Output.line(NotificationShapes.contact(contact).serialized); continue }
            let devices = contact.account.deviceList?.devices.count ?? 0
            Output.line("\(Output.peer(contact.address))  \(contact.trust)  \(devices) device\(devices == 1 ? "" : "s")")
        }
    }
}

struct SendReceiptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-receipt",
        abstract: "Send a read (or delivery) receipt for a contact's messages (the sendReceipt method).")

    @Argument(help: ArgumentHelp("The contact whose messages these are.", valueName: "CONTACT")) var contact: String
    @Option(name: .customLong("target-timestamp"), help: ArgumentHelp("A message's timestamp (repeatable).", valueName: "MS"))
    var timestamps: [UInt64] = []
    @Option(name: .customLong("message-id"), help: ArgumentHelp("A message's id, as hex (repeatable).", valueName: "HEX"))
    var messageIds: [String] = []
    @Option(help: ArgumentHelp("read or delivered.", valueName: "TYPE")) var type = "read"
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard !timestamps.isEmpty || !messageIds.isEmpty else { throw ValidationError("give --target-timestamp or --message-id") }
        guard type == "read" || type == "delivered" else { throw ValidationError("--type must be read or delivered") }
        for id in messageIds where MessageId(hex: id) == nil { throw ValidationError("--message-id \(id) is not 32 hex digits") }
    }

    func run() async throws {
        let engine = try client.openEngine()
        var ids = messageIds.compactMap(Hex.decode)
        if !timestamps.isEmpty {
            let wanted = Set(timestamps)
            let found = try engine.store.messages(in: .direct(try AccountAddress(contact)), limit: 10_000).filter { $0.direction == .incoming && wanted.contains($0.sentAt) }
            let missing = wanted.subtracting(found.map(\.sentAt))
            guard missing.isEmpty else {
                throw ValidationError("no message from \(contact) has the timestamp \(missing.sorted().map(String.init).joined(separator: ", "))")
            }
            ids += found.map(\.clientMessageId)
        }
        try await engine.sendReceipt(to: contact, read: type == "read", messageIds: ids)
        if json {
            Output.line(JSONValue.object(["recipient": .string(contact), "messageIds": .array(ids.map { .hex($0) })]).serialized)
        } else {
            Output.line("sent a \(type) receipt for \(ids.count) message\(ids.count == 1 ? "" : "s") to \(contact)")
        }
    }
}

struct SendTypingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-typing", abstract: "Tell a contact you started or stopped typing (the sendTyping method).")

    @Argument(help: ArgumentHelp("The contact.", valueName: "CONTACT")) var contact: String
    @Flag(help: "Say that you stopped typing.") var stop = false
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let engine = try client.openEngine()
        try await engine.sendTyping(to: contact, started: !stop)
        if json { Output.line(JSONValue.object(["recipient": .string(contact), "stop": .bool(stop)]).serialized) }
    }
}

/// A message id given on the command line: 32 hex digits.
func messageId(_ text: String, _ option: String) throws -> [UInt8] {
    guard let id = MessageId(hex: text) else { throw ValidationError("\(option) must be a message id (32 hex digits)") }
    return id.bytes
}

struct GetAttachmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-attachment",
        abstract: "Download and decrypt the file a message carries (the getAttachment method).")

    @Argument(help: ArgumentHelp("Who sent the message.", valueName: "CONTACT")) var contact: String
    @Argument(help: ArgumentHelp("The message id (from receive --json).", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("Where to save it: a file, or a directory to save it in under the sender's file name (default: the current directory).", valueName: "PATH"))
    var output: String?
    @Flag(help: "Replace the file at the destination if there is one (without it, an existing file is an error and stays as it was).")
    var force = false
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws { _ = try messageId(id, "ID") }

    func run() async throws {
        let engine = try client.openEngine()
        let account = try AccountAddress(await engine.account.address)
        let key = try messageId(id, "ID")
        guard let record = try engine.store.message(sentBy: try AccountAddress(contact), clientMessageId: key)
            ?? engine.store.message(sentBy: account, clientMessageId: key) else {
            throw ValidationError("no message \(id) from \(contact)")
        }
        guard let pointer = record.attachment else { throw ClientError.noAttachment }
        let path = Engine.attachmentDestination(fileName: pointer.fileName, requested: output, fallback: "attachment-\(id)")
        if !force, FileManager.default.fileExists(atPath: path) {
            throw ClientError.file("\(path) already exists; nothing was written (pass --force to replace a file, or --output to choose another name)")
        }
        try await engine.saveAttachment(of: record, to: path, replacing: force)
        if json {
            Output.line(JSONValue.object(["id": .string(id), "filename": .string(pointer.fileName), "contentType": .string(pointer.contentType),
                                          "size": .from(pointer.size), "file": .string(path)]).serialized)
        } else {
            Output.line("saved \(pointer.size) bytes to \(path)")
        }
    }
}
