import ArgumentParser
import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyQR
import ParleyStore

struct SafetyNumberCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "safety-number",
        abstract: "Compute a safety number from raw inputs (libsignal's NumericFingerprint).",
        discussion: """
            For scripting and for checking against other implementations. Keys are hex and taken as given \
            (any length); ids are UTF-8. Parley's own number of an account uses the key 06 followed by the \
            32-byte account key (Encode(AIK), PROTOCOL.md §14) and the address as the id. Prints the 60 \
            digits on one line and, with --scannable-version, the scannable payload (CombinedFingerprints) \
            as hex on a second line.
            """)

    @Option(help: ArgumentHelp("The local party's key, as hex.", valueName: "HEX")) var localKey: String
    @Option(help: ArgumentHelp("The local party's stable id.", valueName: "TEXT")) var localId: String
    @Option(help: ArgumentHelp("The remote party's key, as hex.", valueName: "HEX")) var remoteKey: String
    @Option(help: ArgumentHelp("The remote party's stable id.", valueName: "TEXT")) var remoteId: String
    @Option(help: "SHA-512 rounds per party.") var iterations: Int = SafetyNumber.defaultIterations
    @Option(help: ArgumentHelp("Also print the scannable payload with this version.", valueName: "V")) var scannableVersion: Int?

    func validate() throws {
        guard (1...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be between 1 and 1000000") }
        if let v = scannableVersion, v < 0 { throw ValidationError("--scannable-version must not be negative") }
        _ = try hex(localKey, "--local-key")
        _ = try hex(remoteKey, "--remote-key")
    }

    func run() throws {
        let lk = try hex(localKey, "--local-key"), rk = try hex(remoteKey, "--remote-key")
        let lid = Array(localId.utf8), rid = Array(remoteId.utf8)
        let local = SafetyNumber.partyHash(key: lk, id: lid, iterations: iterations)
        let remote = SafetyNumber.partyHash(key: rk, id: rid, iterations: iterations)
        Output.line([SafetyNumber.digits(of: local), SafetyNumber.digits(of: remote)].sorted().joined())
        if let version = scannableVersion {
            Output.line(Output.hex(SafetyNumber.scannable(version: version, localHash: local, remoteHash: remote)))
        }
    }
}

/// Parses hex (whitespace and ':' allowed), or throws a usage error naming the option.
func hex(_ text: String, _ what: String) throws -> [UInt8] {
    let digits = String(text.filter { !$0.isWhitespace && $0 != ":" })
    guard digits.utf8.count % 2 == 0 else { throw ValidationError("\(what) must be hex with an even number of digits") }
    guard let bytes = Hex.decode(digits) else { throw ValidationError("\(what) is not hex") }
    return bytes
}

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Show a contact's safety number, or check theirs and mark them verified.",
        discussion: """
            Without --digits or --code: prints the 60-digit safety number in 12 groups of 5 and a QR code of \
            its scannable form. Compare them with your contact in person or over a channel you trust. \
            With --digits (the 60 digits your contact reads to you) or --code (the hex text of their scanned \
            code), compares and, if they match, marks the contact verified. A mismatch changes nothing \
            and exits with status 1.
            """)

    @Argument(help: ArgumentHelp("The contact: an address, a nickname, or the name before the @ of one contact's address.", valueName: "CONTACT"), transform: contactName) var contact: String
    @Option(help: ArgumentHelp("The contact's 60 digits (spaces allowed).", valueName: "DIGITS")) var digits: String?
    @Option(help: ArgumentHelp("The scanned code's payload, as hex.", valueName: "HEX")) var code: String?
    @Flag(help: "Draw the QR code with ASCII '#' characters instead of Unicode blocks.") var ascii = false
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard digits == nil || code == nil else { throw ValidationError("give --digits or --code, not both") }
    }

    func run() async throws {
        let operations = try client.openOperations()
        let contact = try operations.resolve(self.contact)
        guard digits != nil || code != nil else {
            let number = try await operations.safetyNumber(with: contact)
            if json { try Output.result(number); return }
            Output.line("Safety number with \(contact):\n")
            let grouped = SafetyNumber.grouped(number.safetyNumber).split(separator: " ")
            for row in stride(from: 0, to: grouped.count, by: 4) {
                Output.line("    " + grouped[row..<min(row + 4, grouped.count)].joined(separator: " "))
            }
            Output.line("")
            for line in try qrLines(try hex(number.scannableSafetyNumber, "the code"), ascii: ascii) { Output.line(line) }
            Output.line("\nIf your contact sees the same numbers, run: parley verify \(contact) --digits \"…\"")
            return
        }
        let evidence: Operations.Evidence = if let digits { .digits(digits) } else { .scanned(try hex(code!, "--code")) }
        let result: VerificationResult
        do { result = try await operations.verify(contact, evidence) } catch OperationError.notASafetyNumber {
            throw ValidationError(digits != nil ? "--digits must be the 60 digits of a safety number" : "--code is not a Parley safety-number code")
        }
        if json { try Output.result(result) }
        if !json { Output.line(Output.peer(result.sentence)) }
        guard result.result == .verified else { throw ExitCode(ErrorCategory.userError.exitCode) }
    }
}

struct IdentitiesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identities",
        abstract: "List every contact's identity state (unverified, verified, changed, untrusted) and safety number (the listIdentities method).")

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per contact.") var json = false

    func run() async throws {
        for identity in try await client.openOperations().identities() {
            if json { try Output.result(identity); continue }
            let key = KeyFingerprint.short(try hex(identity.accountKey, "the key"))
            Output.line("\(Output.peer(identity.address))  \(identity.trust)  \(identity.devices) device\(identity.devices == 1 ? "" : "s")  key \(key)")
        }
    }
}

struct TrustCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Accept a contact's current identity key (after it changed, or under --trust-new-identities never).",
        discussion: "With --verified-safety-number, checks the digits first and marks the contact verified.")

    @Argument(help: ArgumentHelp("The contact: an address, a nickname, or the name before the @ of one contact's address.", valueName: "CONTACT"), transform: contactName) var contact: String
    @Option(name: .customLong("verified-safety-number"), help: ArgumentHelp("The 60 digits you compared.", valueName: "DIGITS"))
    var verifiedSafetyNumber: String?
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let result: TrustResult
        do {
            let operations = try client.openOperations()
            result = try await operations.trust(try operations.resolve(contact), verifiedSafetyNumber: verifiedSafetyNumber)
        } catch OperationError.safetyNumberMismatch where !json {
            Output.line("The safety numbers do NOT match: nothing was changed.")
            throw ExitCode(ErrorCategory.userError.exitCode)
        }
        if json { try Output.result(result); return }
        Output.line(verifiedSafetyNumber != nil ? "\(contact) is verified." : "accepted the current identity key of \(contact) (not verified)")
    }
}

/// The QR code of a payload, as terminal lines: Unicode half-blocks in explicit black on white when
/// writing to a terminal (readable whatever its theme), plain half-blocks otherwise, '#' with --ascii.
func qrLines(_ payload: [UInt8], ascii: Bool) throws -> [String] {
    let code = try QRCode.encode(payload)
    if ascii { return QRRenderer.ascii(code) }
    return QRRenderer.halfBlocks(code, ansiColors: isatty(STDOUT_FILENO) == 1)
}
