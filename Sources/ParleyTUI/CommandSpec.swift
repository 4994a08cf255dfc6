import Foundation

/// One slash command: its name, arguments, help, what each argument completes to, and what it does
/// (`run`, bound in the table itself, so dispatch, `/help`, completion and the man page come from one entry).
public struct CommandSpec: Sendable, Equatable {
    /// What an argument position completes to.
    public enum Completion: Sendable, Equatable {
        case none, contact, theme, setting, command, file
        /// A value of the setting the word before names (`/set KEY VALUE`).
        case settingValue
        /// How a contact's messages announce themselves: on, off or bell.
        case notifyMode
        /// Contacts, for this position and every one after it (`/invite CONTACT…`).
        case contacts
        /// The focused group's members other than this account, here and after (`/kick MEMBER…`).
        case members
        /// One of these words (a subcommand).
        case words([String])
    }

    /// A command's handler: the chat window and the words after the command name.
    typealias Handler = @Sendable (ChatController, [String]) -> Void

    public let name: String
    public let arguments: String
    public let summary: String
    public let help: String
    public let completions: [Completion]
    public var aliases: [String] = []
    let run: Handler

    init(name: String, arguments: String, summary: String, help: String, completions: [Completion], aliases: [String] = [],
         run: @escaping Handler) {
        self.name = name
        self.arguments = arguments
        self.summary = summary
        self.help = help
        self.completions = completions
        self.aliases = aliases
        self.run = run
    }

    public var usage: String { "/" + name + (arguments.isEmpty ? "" : " " + arguments) }

    public static func == (a: CommandSpec, b: CommandSpec) -> Bool {
        (a.name, a.arguments, a.summary, a.help, a.completions, a.aliases) == (b.name, b.arguments, b.summary, b.help, b.completions, b.aliases)
    }
}
