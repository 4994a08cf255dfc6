import ArgumentParser
import Foundation
import ParleyClient
import ParleyProtocol
import ParleyTUI
#if canImport(Glibc)
import Glibc
#endif

/// `parley` with no command, or `parley chat`: the curses front end on this device's account.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Open the chat window (what `parley` with no command does).",
        discussion: """
            A roster of contacts and conversations, the focused conversation, a status bar and an input line. \
            Type a message and press Enter to send it; commands start with '/' (/help lists them). Settings \
            and key bindings come from $XDG_CONFIG_HOME/parley/config.toml (parley(5)); themes from \
            parley-themes(5).
            """)

    @Argument(help: ArgumentHelp("Open the conversation with this contact first.", valueName: "CONTACT"))
    var contact: String?

    @OptionGroup var client: ClientOptions

    @Option(help: ArgumentHelp("Colour theme (overrides config.toml).", valueName: "NAME"))
    var theme: String?

    @Option(help: ArgumentHelp("emacs or vi (overrides config.toml).", valueName: "KEYMAP"))
    var keymap: String?

    @Option(name: .customLong("config"), help: ArgumentHelp("Settings file (default: $XDG_CONFIG_HOME/parley/config.toml).", valueName: "FILE"))
    var configPath: String?

    func run() async throws {
        guard client.resolvedHome.exists else { throw ClientError.noAccount }
        // `parley WORD` opens the conversation with the contact named WORD; a WORD that names no contact is
        // more likely a mistyped command, and says so before anything else.
        var engine: Engine?
        var focus = contact
        if let contact, !contact.contains("@") {
            let opened = try client.openEngine()
            focus = (try? opened.contacts())?.first { $0.address.name == contact }?.address.description
            guard focus != nil else {
                throw ValidationError("'\(contact)' is neither a command nor a contact's name (`parley --help` lists the commands, `parley contacts` the contacts)")
            }
            engine = opened
        }
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw ValidationError("the chat window needs a terminal; in scripts use `parley send` and `parley receive`")
        }
        try client.lockHome(as: "chat window")
        let chatEngine = try engine ?? client.openEngine()
        var options = try chatOptions(configPath: configPath, theme: theme, keymap: keymap)
        options.focus = try focus.map { .direct(try AccountAddress($0)) }
        await ChatSession.run(engine: chatEngine, options: options)
    }
}

/// Config file plus command-line overrides. A broken config.toml does not stop the client: the problem
/// is shown on the console and the defaults are used.
func chatOptions(configPath: String?, theme: String?, keymap: String?) throws -> ChatOptions {
    var options = ChatOptions()
    let path = configPath ?? Config.path()
    do { options.config = try Config.load(path: path) } catch { options.configProblem = "\(path): \(error) — using the defaults" }
    if let theme { options.config.theme = theme }
    if let keymap {
        guard let map = LineEditor.Keymap(rawValue: keymap) else { throw ValidationError("--keymap is emacs or vi") }
        options.config.keymap = map
    }
    return options
}

/// `parley help-commands`: the chat window's commands, as /help shows them or (--man) as the roff that
/// parley(1)'s command section holds.
struct HelpCommandsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "help-commands", abstract: "List the chat window's /commands.")

    @Flag(help: "Print the roff source of parley(1)'s chat-commands section.")
    var man = false

    @Flag(help: "Print the roff source of parley(5)'s SETTINGS section (the config.toml keys, which /set changes).")
    var settings = false

    func run() {
        if settings {
            print(CommandTable.settingsManSection(), terminator: "")
        } else if man {
            print(CommandTable.manSection(), terminator: "")
        } else {
            for line in CommandTable.helpLines() { print(line) }
        }
    }
}
