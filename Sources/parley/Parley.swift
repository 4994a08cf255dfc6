import ArgumentParser
import ParleyClient
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
            var command = try Parley.parseAsRoot()
            parsed = true
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as ClientError {
            fail(error.description, error.exitCode)
        } catch let error as StoreError {
            fail(error.description, error.exitCode)
        } catch let error as ProtocolError {
            fail("\(error)", ParleyExit.unexpected)
        } catch {
            let code = Parley.exitCode(for: error)
            if code == .success { Parley.exit(withError: error) }
            // A command line that does not parse gets ArgumentParser's usage lines; an error found while
            // running (a wrong passphrase, a bad --digits) is one line.
            var message = parsed ? PeerText.forTerminal(Parley.message(for: error), multiline: true) : Parley.fullMessage(for: error)
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            let line = "parley: \(message.isEmpty ? String(describing: error) : message)\n"
            _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
            exit(code == .validationFailure ? ParleyExit.usage : ParleyExit.unexpected)
        }
    }
}

/// Exit statuses, as documented in parley(1).
enum ParleyExit {
    static let usage: Int32 = 1
    static let unexpected: Int32 = 2
}

/// An error's one line on standard error. It can carry what a relay or a peer wrote (a relay's error text,
/// an address), so it passes through the same sanitiser as everything else shown.
func fail(_ message: String, _ code: Int32) -> Never {
    let line = "parley: \(PeerText.forTerminal(message, multiline: true))\n"
    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(code)
}

extension StoreError {
    /// Wrong passphrase, wrong or unreadable key file, missing store: the user can fix it (1). A damaged
    /// or tampered store is unexpected (2).
    var exitCode: Int32 {
        switch self {
        case .corrupt, .tamperedRow, .malformedRecord, .io, .unsupportedSchema, .upgradeFailed: ParleyExit.unexpected
        default: ParleyExit.usage
        }
    }
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
            5 rate limited (parley(1)).
            """,
        version: ParleyVersion.string,
        subcommands: [InitCommand.self, AddContactCommand.self, SendCommand.self, ReceiveCommand.self, SearchCommand.self,
                      VerifyCommand.self, IdentitiesCommand.self, TrustCommand.self, SafetyNumberCommand.self,
                      BackupCommand.self, LinkCommand.self, DevicesCommand.self, DaemonCommand.self, ContactsCommand.self,
                      SendReceiptCommand.self, SendTypingCommand.self, GetAttachmentCommand.self, Demo.self, ChatCommand.self,
                      HelpCommandsCommand.self],
        defaultSubcommand: ChatCommand.self
    )
}

enum ParleyVersion {
    static let string = "0.1.0 (protocol v1)"
}
