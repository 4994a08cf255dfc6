import Foundation
import ParleyClient
import ParleyCrypto
import ParleyHeadless
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// The policy file's parser and checks (parley-policy(5)): every key read, every malformed file refused
/// with its line, and the man page listing exactly the keys the loader accepts.
@Suite("Policy: the administrator's policy file")
struct PolicyFileTests {
    let directory = try! TemporaryDirectory("policy")

    func custodianPublicKey() throws -> (path: String, key: X25519.PublicKey) {
        let path = directory.sub("custodian.key")
        let key = try CustodianKey.generate(privateKeyFile: path, publicKeyFile: path + ".pub")
        return (path + ".pub", key)
    }

    @Test("every key is read, with the line it is on")
    func everyKey() throws {
        let (pub, key) = try custodianPublicKey()
        let policy = try Policy.parse("""
            # company policy
            require_verified = true
            allowed_relays = ["relay.example.org:8443", "chat.example.org"]   # two
            attachments = { max_size = "10MiB", allowed_types = ["image/*", "application/pdf"] }
            min_disappearing = "1h"
            max_retention = "30d"
            backup = "custodian-only"
            custodian_key = "custodian.key.pub"
            unlock = "passphrase"
            min_argon2id_ops = 4
            min_argon2id_memory = "512MiB"
            trust_new_identities = "never"
            """, file: directory.sub("policy.toml"))
        #expect(policy.requireVerified)
        #expect(policy.allowedRelays == ["relay.example.org:8443", "chat.example.org"])
        #expect(policy.attachments == .limited(maxSize: 10 << 20, allowedTypes: ["image/*", "application/pdf"]))
        #expect(policy.minDisappearing == 3600 && policy.maxRetention == 30 * 86_400)
        #expect(policy.backup == .custodianOnly)
        #expect(policy.custodianKey == key, "read relative to the policy file's directory")
        #expect(policy.custodianKeyFile == pub)
        #expect(policy.unlock == .passphrase)
        #expect(policy.minArgon2idOps == 4 && policy.minArgon2idMemory == 512 << 20)
        #expect(policy.trustNewIdentities == .never)
        #expect(policy.lines["require_verified"] == 2 && policy.lines["trust_new_identities"] == 12)
        #expect(Set(policy.lines.keys) == Set(Policy.keys))

        let table = try Policy.parse("attachments = \"block\"\n", file: "p")
        #expect(table.attachments == .block)
        let section = try Policy.parse("require_verified = false\n[attachments]\nmax_size = 1000\n", file: "p")
        #expect(section.attachments == .limited(maxSize: 1000, allowedTypes: nil))
        #expect(try Policy.parse("", file: "p") == { var empty = Policy(); empty.file = "p"; return empty }())
    }

    @Test("a malformed policy is refused with its file, line and reason", arguments: [
        ("require_verified = yes", 1, "'yes' is not a value"),
        ("\n\nrequire_verified = \"true\"", 3, "require_verified takes true or false"),
        ("colour = \"red\"", 1, "unknown key 'colour'"),
        ("backup = \"sometimes\"", 1, "backup is one of \"allowed\", \"forbidden\", \"custodian-only\", not \"sometimes\""),
        ("unlock = \"keyfile\"", 1, "unlock is one of"),
        ("trust_new_identities = \"maybe\"", 1, "trust_new_identities is one of"),
        ("attachments = \"sometimes\"", 1, "attachments is \"allow\", \"block\""),
        ("attachments = { max_size = \"ten\" }", 1, "max_size takes a size"),
        ("attachments = { colour = 1 }", 1, "unknown attachments key 'colour'"),
        ("attachments = { allowed_types = [\"png\"] }", 1, "allowed_types takes an array of content types"),
        ("allowed_relays = []", 1, "allowed_relays is empty"),
        ("allowed_relays = \"relay.example.org\"", 1, "allowed_relays takes an array"),
        ("allowed_relays = [\"a@b\"]", 1, "allowed_relays takes an array"),
        ("min_disappearing = \"1 hour\"", 1, "min_disappearing takes a duration"),
        ("max_retention = 30", 1, "max_retention takes a duration"),
        ("min_argon2id_ops = 99", 1, "min_argon2id_ops takes an integer from 1 to 16"),
        ("require_verified = true\nrequire_verified = false", 2, "require_verified is set twice"),
        ("require_verified = true true", 1, "unexpected text after the value"),
        ("require_verified", 1, "expected KEY = VALUE"),
        ("allowed_relays = [\"a\"", 1, "expected , or ] in the array"),
        ("unlock = \"passphrase", 1, "a string is not closed"),
        ("[disappearing]", 1, "unknown table [disappearing]"),
        ("[attachments\nmax_size = 1", 1, "a table header ends with ]"),
        ("backup = \"custodian-only\"", 1, "needs custodian_key"),
        ("custodian_key = \"/nonexistent/custodian.pub\"\nbackup = \"custodian-only\"", 1, "custodian_key:"),
        ("x = [[[[\"deep\"]]]]", 1, "values nest too deeply"),
    ])
    func malformed(text: String, line: Int, reason: String) {
        let error = #expect(throws: PolicyError.self) { try Policy.parse(text, file: "/etc/parley/policy.toml") }
        guard case .malformed(let file, let at, let said)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(file == "/etc/parley/policy.toml")
        #expect(at == line, "\(said)")
        #expect(said.contains(reason), "\(said)")
        #expect(ErrorCategory.of(error!).exitCode == 6 && ErrorCategory.of(error!).rpcCode == -6)
        #expect(error!.description.hasPrefix("the policy file /etc/parley/policy.toml, line \(line): "))
    }

    @Test("$PARLEY_POLICY names the file; no file at the default path means no policy; a named file that is missing is an error")
    func loading() throws {
        let path = directory.sub("policy.toml")
        try Data("require_verified = true\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try Policy.load(environment: ["PARLEY_POLICY": path]).requireVerified)
        #expect(throws: PolicyError.malformed(file: directory.sub("missing.toml"), line: 0, reason: "cannot read it")) {
            try Policy.load(environment: ["PARLEY_POLICY": directory.sub("missing.toml")])
        }
        #expect(Policy.path(environment: [:]).path == "/etc/parley/policy.toml")
    }

    @Test("each check refuses what its key forbids, with the policy's category; nothing set refuses nothing")
    func checks() throws {
        let (_, key) = try custodianPublicKey()
        let bob = try AccountAddress("bob@relay.example.org:8443")
        let open = Policy()
        try open.checkSending(to: "bob@relay.example.org:8443", trust: .unverified)
        try open.checkRelay(of: bob)
        try open.checkAttachment(size: 1 << 30, contentType: "application/zip")
        try open.checkBackup(custodian: nil)
        try open.checkUnlock(keyFile: true)
        #expect(open.trustPolicy(.always) == .always)

        var strict = Policy()
        strict.requireVerified = true
        strict.allowedRelays = ["relay.example.org:8443"]
        strict.attachments = .limited(maxSize: 1000, allowedTypes: ["image/*"])
        strict.backup = .custodianOnly
        strict.custodianKey = key
        strict.unlock = .passphrase
        strict.trustNewIdentities = .never
        strict.minArgon2idOps = 5
        let refusal = #expect(throws: PolicyError.self) { try strict.checkSending(to: "bob@relay.example.org:8443", trust: .unverified) }
        #expect(refusal?.description.contains("parley verify bob@relay.example.org:8443") == true)
        #expect(refusal.map { ErrorCategory.of($0) } == .policy)
        try strict.checkSending(to: "bob@relay.example.org:8443", trust: .verified)
        try strict.checkRelay(of: bob)
        #expect(throws: PolicyError.self) { try strict.checkRelay(of: try AccountAddress("eve@relay.evil.example:8443")) }
        #expect(throws: PolicyError.self) { try strict.checkRelay(of: try AccountAddress("bob@relay.example.org:9999")) }
        try strict.checkRelay(named: "relay.example.org:8443")
        #expect(throws: PolicyError.self) { try strict.checkRelay(named: "relay.evil.example:8443") }
        try strict.checkAttachment(size: 1000, contentType: "image/png")
        #expect(throws: PolicyError.self) { try strict.checkAttachment(size: 1001, contentType: "image/png") }
        #expect(throws: PolicyError.self) { try strict.checkAttachment(size: 10, contentType: "application/zip") }
        try strict.checkBackup(custodian: key)
        #expect(throws: PolicyError.self) { try strict.checkBackup(custodian: nil) }
        #expect(throws: PolicyError.self) { try strict.checkBackup(custodian: X25519.KeyPair().publicKey) }
        #expect(throws: PolicyError.self) { try strict.checkUnlock(keyFile: true) }
        try strict.checkUnlock(keyFile: false)
        #expect(strict.trustPolicy(.always) == .never)
        #expect(strict.argon2id(atLeast: .moderate).opsLimit == 5)
        #expect(strict.argon2id(atLeast: .moderate).memLimitBytes == Argon2id.Parameters.moderate.memLimitBytes)

        var blocked = Policy()
        blocked.attachments = .block
        blocked.backup = .forbidden
        #expect(throws: PolicyError.self) { try blocked.checkAttachment(size: 1, contentType: "text/plain") }
        #expect(throws: PolicyError.self) { try blocked.checkBackup(custodian: key) }
    }

    @Test("a policy that could not be read refuses every action it governs (fail closed)")
    func brokenPolicyRefusesEverything() throws {
        var broken = Policy()
        broken.broken = .malformed(file: "p", line: 3, reason: "bad")
        #expect(throws: PolicyError.malformed(file: "p", line: 3, reason: "bad")) { try broken.checkSending(to: "a@b:1", trust: .verified) }
        #expect(throws: PolicyError.self) { try broken.checkRelay(of: try AccountAddress("a@b:1")) }
        #expect(throws: PolicyError.self) { try broken.checkAttachment(size: 1, contentType: "text/plain") }
        #expect(throws: PolicyError.self) { try broken.checkBackup(custodian: nil) }
        #expect(throws: PolicyError.self) { try broken.checkUnlock(keyFile: false) }
    }

    @Test("policy show: each key's value and source, policy file or default")
    func show() throws {
        let shown = PolicyShowResult(try Policy.parse("\nrequire_verified = true\nmax_retention = \"14d\"\n", file: "p.toml"))
        #expect(shown.file == "p.toml")
        #expect(Set(shown.settings.keys) == Set(Policy.keys))
        #expect(shown.settings["require_verified"] == .init(value: true, source: "policy", line: 2))
        #expect(shown.settings["max_retention"] == .init(value: "2w", source: "policy", line: 3))
        #expect(shown.settings["backup"] == .init(value: "allowed", source: "default", line: nil))
        #expect(shown.settings["allowed_relays"] == .init(value: .null, source: "default", line: nil))
        let json = try JSONValue(encoding: shown).serialized
        #expect(json.contains("\"require_verified\":{\"line\":2,\"source\":\"policy\",\"value\":true}"), "\(json)")
    }

    @Test("parley-policy(5) documents exactly the keys the loader accepts")
    func manPage() {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let page = (try? String(contentsOfFile: url.path + "/man/parley-policy.5", encoding: .utf8)) ?? ""
        #expect(!page.isEmpty, "man/parley-policy.5 is missing")
        var inside = false
        var documented: [String] = []
        for line in page.split(separator: "\n") {
            if line.hasPrefix(".SH ") { inside = line == ".SH KEYS" }
            else if inside, line.hasPrefix(".SS ") { documented.append(String(line.dropFirst(4))) }
        }
        // Policy.keys is the loader's list of accepted keys (anything else is "unknown key").
        #expect(documented == Policy.keys)
    }
}
