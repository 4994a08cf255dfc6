import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol

// One-shot commands that mirror the daemon's methods (parley-jsonrpc(5)): each adapts one operation, and
// with --json prints the object (one per line for lists) the method returns.

struct ContactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contacts", abstract: "List the contacts (the listContacts method), rename or remove one.",
        subcommands: [ContactsListCommand.self, ContactsRenameCommand.self, ContactsRemoveCommand.self],
        defaultSubcommand: ContactsListCommand.self)
}

struct ContactsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the contacts: nickname, address, trust, devices, blocked (the listContacts method).")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per contact.") var json = false

    func run() async throws {
        for contact in try client.openOperations().contacts() {
            if json { try Output.result(contact); continue }
            let name = contact.name.isEmpty ? "" : "\(Output.peer(contact.name))  "
            Output.line("\(name)\(Output.peer(contact.address))  \(contact.trust)  \(contact.devices) device\(contact.devices == 1 ? "" : "s")"
                        + (contact.isBlocked ? "  blocked" : ""))
        }
    }
}

struct SendReceiptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-receipt",
        abstract: "Send a read (or delivery) receipt for a contact's messages (the sendReceipt method).",
        discussion: "For group:ID the receipt is one group message, which every member sees.")

    @Argument(help: ArgumentHelp("The contact whose messages these are, or group:ID for a group's.", valueName: "CONTACT"),
              transform: conversationName)
    var contact: String
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
        for id in messageIds { _ = try messageId(id, "--message-id") }
    }

    func run() async throws {
        let ids = try messageIds.map { try messageId($0, "--message-id") }
        let operations = try client.openOperations()
        let result = switch try operations.conversation(contact) {
        case .direct(let contact): try await operations.sendReceipt(to: contact, read: type == "read", messageIds: ids, timestamps: timestamps)
        case .group(let id): try await operations.sendReceipt(inGroup: id, read: type == "read", messageIds: ids, timestamps: timestamps)
        }
        if json { try Output.result(result); return }
        let count = result.messageIds.count
        Output.line("sent a \(type) receipt for \(count) message\(count == 1 ? "" : "s") to \(Output.peer(result.recipient))")
    }
}

struct SendTypingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-typing", abstract: "Tell a contact (or a group) you started or stopped typing (the sendTyping method).")

    @Argument(help: ArgumentHelp("The contact: an address, a nickname, or the name before the @ of one contact's address; or group:ID for a group.", valueName: "CONTACT"),
              transform: conversationName) var contact: String
    @Flag(help: "Say that you stopped typing.") var stop = false
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = switch try operations.conversation(contact) {
        case .direct(let contact): try await operations.sendTyping(to: [contact], stop: stop)
        case .group(let id): try await operations.sendTyping(inGroup: id, stop: stop)
        }
        if json { try Output.result(result) }
    }
}

/// A message id given on the command line: 32 hex digits, else a usage error naming the option.
func messageId(_ text: String, _ option: String) throws -> [UInt8] {
    do { return try MessageIdText.parse(text, option) } catch { throw ValidationError(error.description) }
}

struct GetAttachmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get-attachment",
        abstract: "Download and decrypt the file a message carries (the getAttachment method).")

    @Argument(help: ArgumentHelp("Who sent the message (an address, a nickname or a unique name).", valueName: "CONTACT"), transform: contactName)
    var contact: String
    @Argument(help: ArgumentHelp("The message id (from receive --json).", valueName: "ID")) var id: String
    @Option(help: ArgumentHelp("Where to save it: a file, or a directory to save it in under the sender's file name (default: the current directory).", valueName: "PATH"))
    var output: String?
    @Flag(help: "Replace the file at the destination if there is one (without it, an existing file is an error and stays as it was).")
    var force = false
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws { _ = try messageId(id, "ID") }

    func run() async throws {
        let result: AttachmentResult
        do {
            let operations = try client.openOperations()
            result = try await operations.saveAttachment(from: try operations.resolve(contact), id: try messageId(id, "ID"), to: output, replacing: force)
        } catch OperationError.fileExists(let path) {
            throw ClientError.file("\(OperationError.fileExists(path)) (pass --force to replace a file, or --output to choose another name)")
        }
        if json { try Output.result(result); return }
        Output.line("saved \(result.size) bytes to \(result.file ?? "")")
    }
}
