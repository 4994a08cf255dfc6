import ArgumentParser
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// Entry point: parses, runs, and maps every failure to the documented exit status with a one-line
/// message (ArgumentParser's own default for usage errors is 64; ours is 1, as in signal-cli).
@main
enum ParleyMain {
    static func main() async {
        var parsed = false
        do {
            // The administrator's policy is read before anything else: a broken one stops every command.
            try Policy.loadAtStart()
            var command = try Parley.parseAsRoot()
            parsed = true
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as any ClassifiedError {
            // The operations', the engine's and the store's errors: their row of `ErrorCategory` gives the status.
            fail(ErrorObject(error).message, ErrorCategory.of(error).exitCode)
        } catch {
            let code = Parley.exitCode(for: error)
            if code == .success { Parley.exit(withError: error) }
            // A command line that does not parse gets ArgumentParser's usage lines; an error found while
            // running (a wrong passphrase, a bad --digits) is one line.
            var message = parsed ? PeerText.forTerminal(Parley.message(for: error), multiline: true) : Parley.fullMessage(for: error)
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            let line = "parley: \(message.isEmpty ? String(describing: error) : message)\n"
            _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            exit(code == .validationFailure ? ErrorCategory.invalidInput.exitCode : ErrorCategory.unexpected.exitCode)
        }
    }
}

/// An error's one line on standard error. It can carry what a relay or a peer wrote (a relay's error text,
/// an address), so it passes through the same sanitiser as everything else shown.
func fail(_ message: String, _ code: Int32) -> Never {
    let line = "parley: \(PeerText.forTerminal(message, multiline: true))\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(code)
}

/// The `parley` command. Subcommands grow with the issues: the relay client, verification, headless mode
/// and the curses front end each add theirs here.
struct Parley: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley",
        abstract: "End-to-end-encrypted messaging for the terminal.",
        discussion: """
            Parley encrypts every message with PQXDH (X25519 + ML-KEM-1024) and the Double Ratchet, once for \
            each device of the recipient, and seals the sender inside the envelope so the relay sees only the \
            recipient device, a size bucket and a time. See PROTOCOL.md for every byte.

            With no command, parley opens the chat window (`parley chat`).

            Exit status: 0 success, 1 usage error, 2 unexpected error, 3 relay or network, 4 untrusted identity, \
            5 rate limited, 6 forbidden by the administrator's policy or a malformed policy file (parley(1)).
            """,
        version: ParleyVersion.string,
        subcommands: [InitCommand.self, AddContactCommand.self, SendCommand.self, ReceiveCommand.self, SearchCommand.self,
                      VerifyCommand.self, IdentitiesCommand.self, TrustCommand.self, SafetyNumberCommand.self,
                      BackupCommand.self, LinkCommand.self, DevicesCommand.self, DaemonCommand.self, ContactsCommand.self,
                      BlockCommand.self, UnblockCommand.self, ReactCommand.self, EditCommand.self, DeleteCommand.self, GroupCommand.self,
                      DisappearCommand.self,
                      SendReceiptCommand.self, SendTypingCommand.self, GetAttachmentCommand.self, Demo.self, ChatCommand.self,
                      HelpCommandsCommand.self, PolicyCommand.self, CustodianCommand.self, RotateKeysCommand.self],
        defaultSubcommand: ChatCommand.self
    )
}
