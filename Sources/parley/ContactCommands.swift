import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations

// Contacts as people: a nickname, removal, blocking. CONTACT is an address, a nickname, or the local part
// of one contact's address (an ambiguous one is refused, listing the candidates).

struct ContactsRenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rename", abstract: "Give a contact a nickname, shown instead of the address (the updateContact method).",
        discussion: "An empty NAME removes the nickname. Control characters and direction overrides are dropped; at most 40 characters.")

    @Argument(help: ArgumentHelp("The contact.", valueName: "CONTACT"), transform: contactName) var contact: String
    @Argument(help: ArgumentHelp("The nickname.", valueName: "NAME")) var name: String
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try await operations.renameContact(try operations.resolve(contact), to: name)
        if json { try Output.result(result); return }
        Output.line(result.name.isEmpty ? "\(Output.peer(result.address)) has no nickname now"
                                        : "\(Output.peer(result.address)) is now shown as \(Output.peer(result.name))")
    }
}

struct ContactsRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Forget a contact and the sessions with their devices (the removeContact method).",
        discussion: "The conversation's history is kept; adding the contact again continues it.")

    @Argument(help: ArgumentHelp("The contact.", valueName: "CONTACT"), transform: contactName) var contact: String
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try await operations.removeContact(try operations.resolve(contact))
        if json { try Output.result(result); return }
        Output.line("removed \(Output.peer(result.address)) and the sessions with their devices; the conversation's history is kept")
    }
}

struct BlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block", abstract: "Block contacts: their messages are dropped unread, nothing is sent to them (the block method).",
        discussion: """
            A blocked contact's messages are still decrypted (the session stays in step) and acknowledged to \
            the relay, so they do not pile up there, but they are never stored or shown and get no receipt. \
            Sending to a blocked contact is refused.
            """)

    @Argument(help: ArgumentHelp("The contacts.", valueName: "CONTACT"), transform: contactName) var contacts: [String]
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per contact.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        for result in try await operations.setBlocked(try contacts.map(operations.resolve), true) {
            if json { try Output.result(result); continue }
            Output.line("blocked \(Output.peer(result.address))")
        }
    }
}

struct UnblockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unblock", abstract: "Unblock contacts (the unblock method).")

    @Argument(help: ArgumentHelp("The contacts.", valueName: "CONTACT"), transform: contactName) var contacts: [String]
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per contact.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        for result in try await operations.setBlocked(try contacts.map(operations.resolve), false) {
            if json { try Output.result(result); continue }
            Output.line("unblocked \(Output.peer(result.address))")
        }
    }
}
