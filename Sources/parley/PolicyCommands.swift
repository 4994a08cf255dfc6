import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations
import ParleyStore

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "The administrator's policy file (parley-policy(5)).",
        subcommands: [PolicyShow.self])
}

struct PolicyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the policy in force and where each setting comes from.",
        discussion: """
            The policy file is /etc/parley/policy.toml, or the file $PARLEY_POLICY names. Each key is shown \
            with its value and its source: the policy file (and its line), or the default (the policy does \
            not restrict it, and the user's config and flags decide).
            """)

    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let shown = PolicyShowResult(Policy.current)
        if json { try Output.result(shown); return }
        Output.line("policy file: " + (shown.file.map { Output.peer($0) } ?? "none (\(Policy.path().path) does not exist)"))
        let width = Policy.keys.map(\.count).max() ?? 0
        for key in Policy.keys {
            guard let setting = shown.settings[key] else { continue }
            let source = setting.line.map { "policy file, line \($0)" } ?? setting.source
            Output.line(key.padding(toLength: width, withPad: " ", startingAt: 0) + " = "
                        + Output.peer(setting.value.serialized) + "  (\(source))")
        }
    }
}

struct CustodianCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "custodian",
        abstract: "Key pairs for backups an organisation's custodian opens.",
        subcommands: [CustodianKeygen.self])
}

struct CustodianKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a custodian key pair: FILE (private, mode 0600) and FILE.pub (public).",
        discussion: """
            Give FILE.pub to the users (`parley backup export --custodian FILE.pub`, or custodian_key in the \
            policy file); keep FILE offline: it opens every backup sealed to it \
            (`parley backup import --custodian-key FILE`). Neither file may exist yet.
            """)

    @Argument(help: ArgumentHelp("The private key file to write; the public key goes to FILE.pub.", valueName: "FILE")) var file: String

    func run() throws {
        let key = try CustodianKey.generate(privateKeyFile: file, publicKeyFile: file + ".pub")
        Output.line("wrote the custodian's private key to \(file) and its public key to \(file).pub")
        Output.line("public key: \(Output.hex(key.bytes))")
    }
}
