import ArgumentParser
import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// Options every client command takes: where the account lives and how to unlock it.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The account's home directory (default: $PARLEY_HOME, else $XDG_DATA_HOME/parley).", valueName: "DIR"))
    var home: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("Unlock with this key file (mode 0600) instead of a passphrase.", valueName: "FILE"))
    var keyFile: String?

    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Read the passphrase from the first line of FILE.", valueName: "FILE"))
    var passphraseFile: String?

    @Flag(help: "Allow plain http/ws to a relay that is not on a loopback address.")
    var insecure = false

    @Option(name: .customLong("trust-new-identities"),
            help: ArgumentHelp("on-first-use: trust the first key, stop sending when a verified key changes; always; never.",
                               valueName: "POLICY"))
    var trustPolicy: TrustPolicyArgument = .onFirstUse

    var resolvedHome: ParleyHome { ParleyHome.resolve(home) }

    /// The unlock method: --key-file, else --passphrase-file, else $PARLEY_PASSPHRASE, else a no-echo prompt.
    func unlockMethod(confirm: Bool = false) throws -> UnlockMethod {
        try Policy.current.checkUnlock(keyFile: keyFile != nil)
        if let keyFile { return .keyFile(path: keyFile) }
        return .passphrase(try readPassphrase(file: passphraseFile, environment: "PARLEY_PASSPHRASE",
                                              prompt: "Passphrase for \(resolvedHome.path): ", confirm: confirm))
    }

    func openStore() throws -> EncryptedStore {
        let home = resolvedHome
        guard home.exists else { throw ClientError.noAccount }
        return try EncryptedStore.open(at: home.storePath, unlock: try unlockMethod())
    }

    func openEngine() throws -> Engine {
        let store = try openStore()
        guard let account = try store.localAccount() else { throw ClientError.noAccount }
        let endpoint = try ParleyHome.endpoint(for: try account.accountAddress, store: store, insecureOverride: insecure)
        return try Engine(store: store, relay: try RelayClient(endpoint: endpoint), trustPolicy: Policy.current.trustPolicy(trustPolicy.policy),
                          admitting: Policy.current.contactAdmission, expiryLimits: Policy.current.expiryLimits)
    }

    /// The operations on this account (what the subcommands adapt).
    func openOperations() throws -> Operations { Operations(engine: try openEngine()) }

    /// Takes the home's lock for this process's lifetime (`HomeLock`): the chat window, the daemon and
    /// `parley receive` each keep a push connection open, and two of them on one home displace each other.
    func lockHome(as kind: String) throws {
        let home = resolvedHome
        guard home.exists else { throw ClientError.noAccount }
        try HomeLock.acquire(home, kind: kind)
    }
}

/// How to reach a relay for the first time (`init`, `link`); saved in the store for later commands.
struct TransportOptions: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "Use https/wss (default: for hosts that are not loopback, and with --ca-file).")
    var tls: Bool?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("Extra trusted CA certificates (PEM) for the relay's TLS.", valueName: "FILE"))
    var caFile: String?

    func endpoint(relay: String, insecure: Bool) throws -> RelayEndpoint {
        try RelayEndpoint(relay: relay, tls: tls, insecure: insecure, caFile: caFile)
    }
}

/// Reads a secret from a file's first line, an environment variable, or the terminal without echo.
func readPassphrase(file: String?, environment: String, prompt: String, confirm: Bool) throws -> SecretBytes {
    if let file {
        guard var data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read passphrase file \(file)")
        }
        defer { data.resetBytes(in: 0..<data.count) }
        var bytes = [UInt8](data.prefix { $0 != 0x0A && $0 != 0x0D })
        defer { wipe(&bytes) }
        guard !bytes.isEmpty else { throw ValidationError("the passphrase file \(file) is empty") }
        return SecretBytes(bytes)
    }
    if let value = ProcessInfo.processInfo.environment[environment], !value.isEmpty {
        return SecretBytes(Array(value.utf8))
    }
    guard isatty(STDIN_FILENO) == 1 else {
        throw ValidationError("no passphrase: use --key-file, --passphrase-file or $\(environment) when not on a terminal")
    }
    let first = try promptWithoutEcho(prompt)
    if confirm {
        let second = try promptWithoutEcho("Repeat: ")
        guard first.constantTimeEquals(second) else { throw ValidationError("the passphrases do not match") }
    }
    guard first.count > 0 else { throw ValidationError("the passphrase is empty") }
    return first
}

private func promptWithoutEcho(_ prompt: String) throws -> SecretBytes {
    _ = prompt.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    var saved = termios()
    tcgetattr(STDIN_FILENO, &saved)
    var silent = saved
    silent.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
    defer {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
        _ = write(STDERR_FILENO, "\n", 1)
    }
    var line = [UInt8]()
    defer { wipe(&line) }
    var byte: UInt8 = 0
    while read(STDIN_FILENO, &byte, 1) == 1, byte != 0x0A { line.append(byte) }
    if line.last == 0x0D { line.removeLast() }
    return SecretBytes(line)
}

/// Output helpers: one JSON object per line for --json, plain lines otherwise.
enum Output {
    /// One JSON object on one line. The encoder escapes C0 controls; what it leaves raw and a terminal
    /// would obey (C1 controls, bidirectional overrides) is escaped by `PeerText` as well.
    static func json(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
              let text = String(data: data, encoding: .utf8) else { return }
        line(PeerText.escapingForJSON(text))
    }

    /// An operation's result, as the daemon's method returns it (`JSONValue(encoding:)`): one line.
    static func result(_ value: some Encodable) throws {
        line(try JSONValue(encoding: value).serialized)
    }

    /// Text a peer controls (an address, a message, a file name, a reason), ready for a terminal.
    static func peer(_ text: String, multiline: Bool = false) -> String { PeerText.forTerminal(text, multiline: multiline) }

    static func line(_ text: String) {
        let out = text + "\n"
        _ = out.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
    }

    static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
}

struct TrustPolicyArgument: ExpressibleByArgument, Sendable {
    let policy: TrustPolicy
    static let onFirstUse = TrustPolicyArgument(policy: .onFirstUse)
    init(policy: TrustPolicy) { self.policy = policy }
    init?(argument: String) {
        guard let policy = TrustPolicy(rawValue: argument) else { return nil }
        self.policy = policy
    }
    static var allValueStrings: [String] { TrustPolicy.allCases.map(\.rawValue) }
    var defaultValueDescription: String { policy.rawValue }
}
