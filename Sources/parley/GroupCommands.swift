import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations

// Groups (`parley group …`): every device of every member is a member of the group's MLS tree; the relay
// orders its changes. GROUP is the id `parley group list` shows (64 hex digits) or signal-cli's base64 one.

struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group", abstract: "List, create and change groups (the listGroups and updateGroup methods).",
        subcommands: [GroupListCommand.self, GroupShowCommand.self, GroupCreateCommand.self, GroupAddCommand.self,
                      GroupRemoveCommand.self, GroupLeaveCommand.self, GroupRenameCommand.self],
        defaultSubcommand: GroupListCommand.self)

    static func show(_ group: GroupResult, json: Bool) throws {
        if json { try Output.result(group); return }
        Output.line("\(group.id)  \(Output.peer(group.name.isEmpty ? "(no name yet)" : group.name))  "
                    + "\(group.members.count) member\(group.members.count == 1 ? "" : "s"), \(group.devices) device\(group.devices == 1 ? "" : "s")"
                    + (group.active ? "" : "  (left)"))
    }
}

struct GroupListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the groups: id, name, members (the listGroups method).")
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per group.") var json = false

    func run() async throws {
        for group in try client.openOperations().listGroups() { try GroupCommand.show(group, json: json) }
    }
}

struct GroupShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a group and its member accounts.")
    @Argument(help: ArgumentHelp("The group.", valueName: "GROUP")) var group: String
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result = try operations.showGroup(try operations.groupId(group))
        try GroupCommand.show(result, json: json)
        if !json { for member in result.members { Output.line("  " + Output.peer(member)) } }
    }
}

struct GroupCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a group with these contacts (updateGroup without a groupId).")
    @Argument(help: ArgumentHelp("The group's name.", valueName: "NAME")) var name: String
    @Argument(help: ArgumentHelp("Contacts to add (every device of each).", valueName: "CONTACT"), transform: contactName) var members: [String] = []
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        try GroupCommand.show(try await operations.createGroup(name: name, members: try members.map(operations.resolve)), json: json)
    }
}

struct GroupAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add contacts to a group (updateGroup with member).")
    @Argument(help: ArgumentHelp("The group.", valueName: "GROUP")) var group: String
    @Argument(help: ArgumentHelp("Contacts to add.", valueName: "CONTACT"), transform: contactName) var members: [String]
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        try GroupCommand.show(try await operations.addToGroup(try operations.groupId(group), members: try members.map(operations.resolve)), json: json)
    }
}

struct GroupRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove members from a group (updateGroup with removeMember).")
    @Argument(help: ArgumentHelp("The group.", valueName: "GROUP")) var group: String
    @Argument(help: ArgumentHelp("Members to remove.", valueName: "CONTACT"), transform: contactName) var members: [String]
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        try GroupCommand.show(try await operations.removeFromGroup(try operations.groupId(group), members: try members.map(operations.resolve)), json: json)
    }
}

struct GroupLeaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leave", abstract: "Leave a group (the quitGroup method); its history is kept.")
    @Argument(help: ArgumentHelp("The group.", valueName: "GROUP")) var group: String
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        try GroupCommand.show(try await operations.leaveGroup(try operations.groupId(group)), json: json)
    }
}

struct GroupRenameCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a group for every member (updateGroup with name).")
    @Argument(help: ArgumentHelp("The group.", valueName: "GROUP")) var group: String
    @Argument(help: ArgumentHelp("The new name.", valueName: "NAME")) var name: String
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        try GroupCommand.show(try await operations.renameGroup(try operations.groupId(group), to: name), json: json)
    }
}
