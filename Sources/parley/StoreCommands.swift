import ArgumentParser
import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search message history (the search method).",
        discussion: """
            Case-insensitive substring search, newest first. No plaintext index exists on disk: every message \
            is decrypted in memory and scanned.
            """)

    @Argument(help: "The text to look for.") var text: String
    @Option(help: ArgumentHelp("Only the conversation with this contact (an address, a nickname or a unique name).", valueName: "CONTACT"),
            transform: contactName)
    var contact: String?
    @Option(help: "Most results to show (1-10000).") var limit: Int = Operations.defaultSearchLimit
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per result.") var json = false

    func validate() throws {
        guard !text.isEmpty else { throw ValidationError("the search text is empty") }
    }

    func run() async throws {
        let operations = try client.openOperations()
        let results = try operations.search(text, with: try contact.map(operations.resolve), limit: limit)
        for m in results {
            if json { try Output.result(m); continue }
            let who = m.direction == "incoming" ? m.source : "you → \(m.conversation)"
            Output.line("\(Self.timestamp(m.timestamp))  \(Output.peer(who)): " + Output.peer(m.message, multiline: true))
        }
        if !json && results.isEmpty { Output.line("no messages contain \"\(text)\"") }
    }

    static func timestamp(_ milliseconds: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Export the account to an encrypted file, or restore it on a new machine.",
        subcommands: [BackupExport.self, BackupImport.self])
}

/// The backup passphrase: --backup-passphrase-file, $PARLEY_BACKUP_PASSPHRASE, or a prompt.
struct BackupPassphraseOption: ParsableArguments {
    @Option(name: .customLong("backup-passphrase-file"), help: ArgumentHelp("Read the backup's passphrase from FILE.", valueName: "FILE"))
    var file: String?

    func read(confirm: Bool) throws -> SecretBytes {
        try readPassphrase(file: file, environment: "PARLEY_BACKUP_PASSPHRASE", prompt: "Backup passphrase: ", confirm: confirm)
    }
}

struct BackupExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the account, contacts, trust decisions and history to one encrypted file.",
        discussion: """
            The file is encrypted (libsodium secretstream) with a key from Argon2id over the backup passphrase, \
            or, with --custodian, a random key sealed to a custodian's public key (`parley custodian keygen`), \
            which only the custodian's private key opens. Ratchet sessions and prekeys are not included: after \
            a restore, every contact starts a fresh session with the restored device.
            """)

    @Argument(help: ArgumentHelp("The backup file to write (replaced atomically, mode 0600).", valueName: "FILE")) var file: String
    @Option(help: ArgumentHelp("Seal the backup to the custodian public key in FILE instead of a passphrase.", valueName: "FILE"))
    var custodian: String?
    @OptionGroup var client: ClientOptions
    @OptionGroup var backup: BackupPassphraseOption

    func run() throws {
        let operations = try client.openOperations()
        let seal: Backup.Seal
        if let custodian {
            seal = .custodian(try CustodianKey.readPublic(custodian))
        } else {
            // Refused before the passphrase is asked for, when the policy forbids it.
            try operations.policy.checkBackup(custodian: nil)
            seal = .passphrase(try backup.read(confirm: true))
        }
        let summary = try operations.exportBackup(to: file, sealedWith: seal)
        Output.line("exported \(summary.contacts) contact\(summary.contacts == 1 ? "" : "s") and \(summary.messages) message\(summary.messages == 1 ? "" : "s") to \(file)")
    }
}

struct BackupImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Restore a backup into an empty home directory.",
        discussion: """
            Creates a new store (protected by --key-file, --passphrase-file, $PARLEY_PASSPHRASE or a prompt), \
            restores the account, contacts and history, gives this device a new device key and fresh prekeys, \
            and publishes the re-signed device list to the relay so contacts start new sessions with it.
            """)

    @Argument(help: ArgumentHelp("The backup file to read.", valueName: "FILE")) var file: String
    @Option(name: .customLong("custodian-key"),
            help: ArgumentHelp("Open a backup sealed to a custodian with the custodian's private key in FILE.", valueName: "FILE"))
    var custodianKey: String?
    @OptionGroup var client: ClientOptions
    @OptionGroup var backup: BackupPassphraseOption
    @Flag(help: "Restore only; do not contact the relay (publish later with `parley receive`).") var offline = false

    func run() async throws {
        let home = client.resolvedHome
        if home.exists { throw ClientError.accountExists(home.storePath) }
        let opener: Backup.Opener = if let custodianKey {
            .custodian(try CustodianKey.readPrivate(custodianKey))
        } else {
            .passphrase(try backup.read(confirm: false))
        }
        // A failed restore leaves nothing it made behind (and never more: the home may be a directory
        // that already held other files).
        let (store, summary) = try await home.creating(keyFile: client.keyFile) {
            let unlock = try client.unlockMethod(confirm: true)
            try home.create()
            do {
                return try Backup.restore(from: file, openedWith: opener, into: home.storePath, unlock: [unlock],
                                          parameters: Policy.current.argon2id(atLeast: .moderate))
            } catch StoreError.wrongPassphrase {
                throw ValidationError("wrong backup passphrase: nothing was restored")
            }
        }
        Output.line("restored \(summary.contacts) contact\(summary.contacts == 1 ? "" : "s") and \(summary.messages) message\(summary.messages == 1 ? "" : "s") into \(home.path)")
        guard !offline, let account = try store.localAccount() else { return }
        let engine = try Engine(store: store, relay: try RelayClient(endpoint: try ParleyHome.endpoint(for: try account.accountAddress, store: store,
                                                                                                        insecureOverride: client.insecure)))
        try await engine.publishRestoredDevice()
        Output.line("published the new device key of \(account.address) to its relay")
    }
}
