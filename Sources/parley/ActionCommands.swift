import ArgumentParser
import Foundation
import ParleyOperations

// Reactions, edits and deletes for everyone. CONTACT names the conversation: a contact, or group:ID for a group.
// MESSAGE is a message's id (32 hex digits, as `parley receive --json` and `search` give it) or its timestamp
// (milliseconds, signal-cli's targetTimestamp).

func messageTarget(_ text: String) throws -> Operations.MessageTarget {
    if text.count < 2 * 16, !text.isEmpty, text.allSatisfy(\.isASCII), let timestamp = UInt64(text) { return .timestamp(timestamp, author: nil) }
    return .id(try messageId(text, "MESSAGE"))
}

private func describe(_ result: ActionResult) -> String {
    let counts = result.reactions.map { "\(Output.peer($0.emoji)) \($0.count)" }.joined(separator: "  ")
    let state = result.deleted ? "deleted" : result.edited ? "edited" : "sent"
    return "\(state) \(result.id) to \(Output.peer(result.recipient))\(counts.isEmpty ? "" : "  [\(counts)]")"
}

struct ReactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "react", abstract: "React to a message with one emoji, or remove your reaction (the sendReaction method).",
        discussion: "One reaction per person per message: a new one replaces yours. Anyone's messages in the conversation (or the group) can be reacted to.")

    @Argument(help: ArgumentHelp("The contact (the conversation), or group:ID for a group.", valueName: "CONTACT"), transform: conversationName)
    var contact: String
    @Argument(help: ArgumentHelp("The message: its id (hex) or timestamp.", valueName: "MESSAGE"), transform: messageTarget)
    var message: Operations.MessageTarget
    @Argument(help: ArgumentHelp("One emoji.", valueName: "EMOJI")) var emoji: String
    @Flag(help: "Remove your reaction instead.") var remove = false
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try await operations.react(in: try operations.conversation(contact), to: message, emoji: emoji, remove: remove)
        if json { try Output.result(result); return }
        Output.line("\(remove ? "removed your reaction to" : "reacted \(Output.peer(emoji)) to") \(describe(result))")
    }
}

struct EditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Change the text of one of your messages (the send method with editTimestamp).",
        discussion: "Every device (in a group, every member's) shows the new text marked as edited; the earlier texts stay in the message's history.")

    @Argument(help: ArgumentHelp("The contact (the conversation), or group:ID for a group.", valueName: "CONTACT"), transform: conversationName)
    var contact: String
    @Argument(help: ArgumentHelp("Your message: its id (hex) or timestamp.", valueName: "MESSAGE"), transform: messageTarget)
    var message: Operations.MessageTarget
    @Argument(help: ArgumentHelp("The new text.", valueName: "TEXT")) var text: [String]
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try await operations.edit(in: try operations.conversation(contact), message, text: text.joined(separator: " "))
        if json { try Output.result(result); return }
        Output.line(describe(result))
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete one of your messages for everyone (the remoteDelete method).",
        discussion: "Every device, yours and the contact's (or every member's of a group), replaces the message by \"deleted\"; its text, file and history are gone.")

    @Argument(help: ArgumentHelp("The contact (the conversation), or group:ID for a group.", valueName: "CONTACT"), transform: conversationName)
    var contact: String
    @Argument(help: ArgumentHelp("Your message: its id (hex) or timestamp.", valueName: "MESSAGE"), transform: messageTarget)
    var message: Operations.MessageTarget
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try await operations.deleteForEveryone(in: try operations.conversation(contact), message)
        if json { try Output.result(result); return }
        Output.line(describe(result))
    }
}
