import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// The administrator's policy file (parley-policy(5)): `/etc/parley/policy.toml`, or `$PARLEY_POLICY`. It is
/// read once at start by every front end, and the operations check it, so the command line, the daemon and
/// the chat window refuse the same actions; the user's config and flags cannot weaken it. A file that does
/// not parse stops the program: a broken policy is never ignored.
public struct Policy: Sendable, Equatable {
    public enum Attachments: Sendable, Equatable {
        case allow
        case block
        /// Files up to `maxSize` bytes whose content type is one of `allowedTypes` (either nil: no limit).
        case limited(maxSize: UInt64?, allowedTypes: [String]?)
    }

    public enum BackupRule: String, Sendable, CaseIterable {
        case allowed
        case forbidden
        case custodianOnly = "custodian-only"
    }

    public enum UnlockRule: String, Sendable, CaseIterable {
        case any
        /// Stores are unlocked with a passphrase only: key files are refused.
        case passphrase
    }

    public var requireVerified = false
    /// Relays (HOST or HOST:PORT) accounts and contacts may be on; nil allows every relay.
    public var allowedRelays: [String]? = nil
    public var attachments: Attachments = .allow
    /// Seconds: the longest disappearing-message timer (which cannot be turned off), and the longest a
    /// message is kept (Operations+Disappearing.swift checks them; the engine applies `expiryLimits`).
    public var minDisappearing: UInt64? = nil
    public var maxRetention: UInt64? = nil
    public var backup: BackupRule = .allowed
    /// The public key every backup must be sealed to under `backup = "custodian-only"`.
    public var custodianKey: X25519.PublicKey? = nil
    public var custodianKeyFile: String? = nil
    public var unlock: UnlockRule = .any
    /// The least Argon2id work a new store's passphrase is stretched with.
    public var minArgon2idOps: UInt64? = nil
    public var minArgon2idMemory: UInt64? = nil
    public var trustNewIdentities: TrustPolicy? = nil

    /// The file it was read from (nil: no policy file), and the line each key was set on.
    public var file: String? = nil
    public var lines: [String: Int] = [:]

    public init() {}

    /// The keys a policy file may set, in the order `policy show` lists them (parley-policy(5) documents each).
    public static let keys = ["require_verified", "allowed_relays", "attachments", "min_disappearing", "max_retention",
                              "backup", "custodian_key", "unlock", "min_argon2id_ops", "min_argon2id_memory",
                              "trust_new_identities"]

    public static let defaultPath = "/etc/parley/policy.toml"

    /// The policy file's path: `$PARLEY_POLICY` when set, else /etc/parley/policy.toml.
    public static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> (path: String, named: Bool) {
        if let named = environment["PARLEY_POLICY"], !named.isEmpty { return (named, true) }
        return (defaultPath, false)
    }

    /// Reads the policy in force: none when /etc/parley/policy.toml does not exist; a file named by
    /// `$PARLEY_POLICY` must exist.
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(PolicyError) -> Policy {
        let (path, named) = path(environment: environment)
        guard let data = FileManager.default.contents(atPath: path) else {
            if !named && !FileManager.default.fileExists(atPath: path) { return Policy() }
            throw .malformed(file: path, line: 0, reason: "cannot read it")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// The policy this process runs under, read on first use. A policy file that cannot be read refuses
    /// every action it governs (front ends call `loadAtStart` first, which stops the program instead).
    public static let current: Policy = {
        do throws(PolicyError) { return try load() } catch {
            var broken = Policy()
            broken.broken = error
            return broken
        }
    }()

    /// Reads the policy at start; the error names the file, the line and the reason.
    public static func loadAtStart() throws(PolicyError) {
        if let broken = current.broken { throw broken }
    }

    /// Set when the policy file could not be read: every check then throws it.
    public var broken: PolicyError? = nil
}

/// A policy file that does not parse, or an action the policy forbids.
public enum PolicyError: Error, Sendable, Equatable, CustomStringConvertible, ClassifiedError {
    case malformed(file: String, line: Int, reason: String)
    case forbidden(String)
    /// require_verified: the contact's safety number was not verified.
    case unverified(contact: String)

    public var description: String {
        switch self {
        case .malformed(let file, let line, let reason):
            line > 0 ? "the policy file \(file), line \(line): \(reason)" : "the policy file \(file): \(reason)"
        case .forbidden(let text): "forbidden by policy: \(text)"
        case .unverified(let contact):
            "forbidden by policy: \(contact) is not verified (require_verified); compare safety numbers first: "
                + "`parley verify \(contact)`, or /verify in the chat window"
        }
    }

    public var category: ErrorCategory { .policy }
}

// MARK: Checks (called by the operations, and by the commands that run before an account exists)

extension Policy {
    private func ready() throws(PolicyError) { if let broken { throw broken } }

    /// A message to `contact` (its trust as stored) under require_verified.
    public func checkSending(to contact: String, trust: TrustState?) throws(PolicyError) {
        try ready()
        guard requireVerified, trust != .verified else { return }
        throw .unverified(contact: contact)
    }

    /// An account or contact on `address`'s relay under allowed_relays.
    public func checkRelay(of address: AccountAddress) throws(PolicyError) {
        try ready()
        guard let allowedRelays else { return }
        let relay = address.relay.lowercased(), host = address.host.lowercased()
        guard !allowedRelays.contains(where: { $0.lowercased() == relay || $0.lowercased() == host }) else { return }
        throw .forbidden("\(address.relay) is not one of the allowed relays (\(allowedRelays.joined(separator: ", ")))")
    }

    /// `checkRelay(of:)` as the engine applies it to a stranger who writes first (`Engine(admitting:)`).
    public var contactAdmission: ContactAdmission {
        let policy = self
        return { address in
            do { try policy.checkRelay(of: address) } catch { return String(describing: error) }
            return nil
        }
    }

    /// A relay named as HOST:PORT (linking a device to an account there).
    public func checkRelay(named relay: String) throws(PolicyError) {
        guard let address = try? AccountAddress("device@" + relay) else {
            try ready()
            if allowedRelays != nil { throw .forbidden("\(relay) is not one of the allowed relays") }
            return
        }
        try checkRelay(of: address)
    }

    /// A file of `size` bytes and `contentType` sent as an attachment.
    public func checkAttachment(size: UInt64, contentType: String) throws(PolicyError) {
        try ready()
        switch attachments {
        case .allow: return
        case .block: throw .forbidden("attachments are blocked")
        case .limited(let maxSize, let allowedTypes):
            if let maxSize, size > maxSize { throw .forbidden("the file has \(size) bytes; attachments may have at most \(maxSize)") }
            if let allowedTypes, !allowedTypes.contains(where: { Self.type(contentType, matches: $0) }) {
                throw .forbidden("files of type \(contentType) may not be attached (allowed: \(allowedTypes.joined(separator: ", ")))")
            }
        }
    }

    /// `type/*` matches every subtype.
    static func type(_ contentType: String, matches pattern: String) -> Bool {
        let type = contentType.lowercased(), pattern = pattern.lowercased()
        if pattern.hasSuffix("/*") { return type.hasPrefix(String(pattern.dropLast())) }
        return type == pattern
    }

    /// A backup export sealed with a passphrase (`custodian` nil) or to `custodian`.
    public func checkBackup(custodian: X25519.PublicKey?) throws(PolicyError) {
        try ready()
        switch backup {
        case .allowed: return
        case .forbidden: throw .forbidden("backups are forbidden")
        case .custodianOnly:
            guard let custodian else { throw .forbidden("backups must be sealed to the custodian's key (--custodian)") }
            if let custodianKey, custodian != custodianKey {
                throw .forbidden("backups must be sealed to the custodian key in \(custodianKeyFile ?? "the policy"), not to another")
            }
        }
    }

    /// Unlocking (or creating) a store with a key file.
    public func checkUnlock(keyFile: Bool) throws(PolicyError) {
        try ready()
        if keyFile && unlock == .passphrase { throw .forbidden("stores are unlocked with a passphrase only, not a key file (unlock = \"passphrase\")") }
    }

    /// The Argon2id work a new store's passphrase gets: `requested`, raised to the policy's minimum.
    public func argon2id(atLeast requested: Argon2id.Parameters) -> Argon2id.Parameters {
        Argon2id.Parameters(opsLimit: max(requested.opsLimit, minArgon2idOps ?? 0),
                            memLimitBytes: max(requested.memLimitBytes, Int(clamping: minArgon2idMemory ?? 0)))
    }

    /// The trust policy for new identities: the policy's when it forces one, else `requested`.
    public func trustPolicy(_ requested: TrustPolicy) -> TrustPolicy { trustNewIdentities ?? requested }
}

extension Operations {
    /// The contact's trust, checked against require_verified before anything is sent to it.
    public func checkPolicyAllowsSending(to recipient: AccountAddress) throws {
        let trust = ((try? engine.contact(recipient)) ?? nil)?.trust
        try policy.checkSending(to: recipient.description, trust: trust)
    }

    /// The file at `path` (its size and the content type it would be sent as) against `attachments`.
    public func checkPolicyAllowsAttaching(_ path: String) throws {
        guard policy.attachments != .allow || policy.broken != nil else { return }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
        try policy.checkAttachment(size: size, contentType: Engine.contentType(forFileName: path))
    }
}

/// `parley policy show`: each key's value in force and where it came from.
public struct PolicyShowResult: Codable, Sendable, Equatable {
    public struct Setting: Codable, Sendable, Equatable {
        public let value: JSONValue
        /// "policy" (the policy file, at `line`) or "default" (not restricted: the user's config and flags decide).
        public let source: String
        public let line: Int?

        public init(value: JSONValue, source: String, line: Int?) {
            self.value = value
            self.source = source
            self.line = line
        }
    }

    public let file: String?
    public let settings: [String: Setting]

    public init(_ policy: Policy) {
        file = policy.file
        var settings: [String: Setting] = [:]
        for key in Policy.keys {
            let line = policy.lines[key]
            settings[key] = Setting(value: policy.shownValue(key), source: line == nil ? "default" : "policy", line: line)
        }
        self.settings = settings
    }
}

extension Policy {
    func shownValue(_ key: String) -> JSONValue {
        func optional(_ value: UInt64?, _ shown: (UInt64) -> JSONValue) -> JSONValue { value.map(shown) ?? .null }
        switch key {
        case "require_verified": return .bool(requireVerified)
        case "allowed_relays": return allowedRelays.map { .array($0.map(JSONValue.string)) } ?? .null
        case "attachments":
            switch attachments {
            case .allow: return "allow"
            case .block: return "block"
            case .limited(let maxSize, let types):
                return .object(["max_size": optional(maxSize, JSONValue.from), "allowed_types": types.map { .array($0.map(JSONValue.string)) } ?? .null])
            }
        case "min_disappearing": return optional(minDisappearing) { .string(Self.shownDuration($0)) }
        case "max_retention": return optional(maxRetention) { .string(Self.shownDuration($0)) }
        case "backup": return .string(backup.rawValue)
        case "custodian_key": return custodianKeyFile.map(JSONValue.string) ?? .null
        case "unlock": return .string(unlock.rawValue)
        case "min_argon2id_ops": return optional(minArgon2idOps, JSONValue.from)
        case "min_argon2id_memory": return optional(minArgon2idMemory, JSONValue.from)
        case "trust_new_identities": return trustNewIdentities.map { .string($0.rawValue) } ?? .null
        default: return .null
        }
    }

    /// Seconds in the largest unit that divides them: 86400 → "1d".
    static func shownDuration(_ seconds: UInt64) -> String {
        for (unit, scale) in [("w", UInt64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds % scale == 0 {
            return "\(seconds / scale)\(unit)"
        }
        return "\(seconds)s"
    }
}
