import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// The administrator's policy (parley-policy(5)) enforced where the three front ends meet: the operations
/// (which the daemon's methods and the chat window's /add, /attach and sender call), then the `parley`
/// process and the daemon over its socket, each against a real relay.
@Suite("Policy: every key enforced by the operations, the command line and the daemon")
struct PolicyEnforcementTests {
    @Test("operations: require_verified, allowed_relays, attachments and backup refuse with the policy's code and store nothing")
    func operations() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let conversation = direct(bobAddress)
            var policy = Policy()
            policy.requireVerified = true
            let operations = Operations(engine: alice.engine, policy: policy)

            // require_verified: refused before anything is stored, with how to verify; the chat window's
            // sender makes the same check (checkPolicyAllowsSending) before it sends.
            let refused = await #expect(throws: PolicyError.self) { try await operations.send(.init(recipients: [bobAddress], text: "hi")) }
            #expect(refused?.description.contains("parley verify \(bobAddress)") == true, "\(String(describing: refused))")
            #expect(refused.map { ErrorObject($0).code } == -6)
            #expect(throws: PolicyError.self) { try operations.checkPolicyAllowsSending(to: bobAddress) }
            #expect(try alice.engine.messages(in: conversation, limit: 10).isEmpty)
            // Several recipients: that one is a FAILURE with the policy's code.
            let several = try await operations.send(.init(recipients: [bobAddress, bobAddress], text: "hi"))
            #expect(several.results.map(\.error?.code) == [-6, -6])
            // Verified, it goes.
            let number = try await operations.safetyNumber(with: bobAddress).safetyNumber
            _ = try await operations.trust(bobAddress, verifiedSafetyNumber: number)
            let sent = try await operations.send(.init(recipients: [bobAddress], text: "verified now"))
            #expect(sent.results.map(\.type) == [.success])

            // allowed_relays: a contact elsewhere is refused before the relay is asked.
            var relays = Policy()
            relays.allowedRelays = ["relay.elsewhere.example"]
            await #expect(throws: PolicyError.self) {
                try await Operations(engine: alice.engine, policy: relays).addContact(try AccountAddress("carol@\(relay.name)"))
            }
            #expect(try alice.engine.contact(try AccountAddress("carol@\(relay.name)")) == nil)
            relays.allowedRelays = [relay.name]
            let carol = try await TestDevice.create("carol", on: relay, in: directory)
            _ = try await Operations(engine: alice.engine, policy: relays).addContact(await carol.address)

            // attachments: blocked, too large, of a type not allowed; allowed ones go.
            let picture = directory.sub("cat.png"), archive = directory.sub("files.zip")
            FileManager.default.createFile(atPath: picture, contents: Data(repeating: 7, count: 2000))
            FileManager.default.createFile(atPath: archive, contents: Data(repeating: 7, count: 10))
            func attach(_ file: String, _ rule: Policy.Attachments) async throws -> SendResult {
                var policy = Policy()
                policy.attachments = rule
                return try await Operations(engine: alice.engine, policy: policy).send(.init(recipients: [bobAddress], text: "", attachment: file))
            }
            let count = try alice.engine.messages(in: conversation, limit: 100).count
            await #expect(throws: PolicyError.self) { try await attach(picture, .block) }
            await #expect(throws: PolicyError.self) { try await attach(picture, .limited(maxSize: 1999, allowedTypes: nil)) }
            await #expect(throws: PolicyError.self) { try await attach(archive, .limited(maxSize: nil, allowedTypes: ["image/*"])) }
            #expect(try alice.engine.messages(in: conversation, limit: 100).count == count, "nothing stored for a refused file")
            #expect(try await attach(picture, .limited(maxSize: 2000, allowedTypes: ["image/*"])).results.map(\.type) == [.success])

            // backup: forbidden; custodian-only wants the policy's custodian key.
            let keyFile = directory.sub("custodian.key")
            let custodian = try CustodianKey.generate(privateKeyFile: keyFile, publicKeyFile: keyFile + ".pub")
            var backups = Policy()
            backups.backup = .forbidden
            let file = directory.sub("alice.backup")
            #expect(throws: PolicyError.self) {
                try Operations(engine: alice.engine, policy: backups).exportBackup(to: file, sealedWith: .custodian(custodian))
            }
            backups.backup = .custodianOnly
            backups.custodianKey = custodian
            #expect(throws: PolicyError.self) {
                try Operations(engine: alice.engine, policy: backups).exportBackup(to: file, passphrase: SecretBytes(Array("pass".utf8)))
            }
            #expect(throws: PolicyError.self) {
                try Operations(engine: alice.engine, policy: backups).exportBackup(to: file, sealedWith: .custodian(X25519.KeyPair().publicKey))
            }
            #expect(!FileManager.default.fileExists(atPath: file))
            #expect(try Operations(engine: alice.engine, policy: backups).exportBackup(to: file, sealedWith: .custodian(custodian)).contacts == 2)
        }
    }

    @Test("the parley command: refusals exit 6 with the reason, a malformed policy stops every command, policy show, custodian backups")
    func commandLine() async throws {
        try await withRelay { relay, directory in
            let parley = try Binaries.path("parley")
            let policyFile = directory.sub("policy.toml")
            func policy(_ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: policyFile)) }
            func run(_ arguments: [String], _ home: String) async throws -> ProcessResult {
                try await ParleyRelayTests.run(parley, arguments + ["--home", directory.sub(home), "--key-file", directory.sub(home + ".key")],
                                               in: directory, environment: ["PARLEY_POLICY": policyFile])
            }
            let alice = "alice@\(relay.name)", bob = "bob@\(relay.name)"

            // allowed_relays and unlock refuse init before anything is made.
            try policy("allowed_relays = [\"relay.elsewhere.example\"]\n")
            var result = try await run(["init", alice], "alice")
            #expect(result.status == 6 && result.stderr.contains("is not one of the allowed relays"), "\(result.summary)")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("alice")))
            try policy("unlock = \"passphrase\"\n")
            result = try await run(["init", alice], "alice")
            #expect(result.status == 6 && result.stderr.contains("not a key file"), "\(result.summary)")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("alice")) && !FileManager.default.fileExists(atPath: directory.sub("alice.key")))

            try policy("allowed_relays = [\"\(relay.name)\"]\n")
            #expect(try await run(["init", alice], "alice").status == 0)
            #expect(try await run(["init", bob], "bob").status == 0)
            #expect(try await run(["add-contact", bob], "alice").status == 0)

            // trust_new_identities is forced: the flag asks for "always", the policy says "never".
            try policy("trust_new_identities = \"never\"\n")
            result = try await run(["add-contact", alice, "--trust-new-identities", "always"], "bob")
            #expect(result.status == 0, "\(result.summary)")
            result = try await run(["contacts", "--json"], "bob")
            #expect(result.stdout.contains("\"trustLevel\":\"UNTRUSTED\""), "\(result.summary)")

            // A malformed policy stops every command, with the file, the line and the reason.
            try policy("require_verified = true\nattachments = \"sometimes\"\n")
            result = try await run(["contacts"], "alice")
            #expect(result.status == 6, "\(result.summary)")
            #expect(result.stderr.contains("the policy file \(policyFile), line 2: attachments is"), "\(result.summary)")

            try policy("require_verified = true\nattachments = \"block\"\nbackup = \"forbidden\"\n")
            result = try await run(["send", bob, "hello"], "alice")
            #expect(result.status == 6 && result.stderr.contains("\(bob) is not verified") && result.stderr.contains("parley verify"), "\(result.summary)")
            let file = directory.sub("note.txt")
            FileManager.default.createFile(atPath: file, contents: Data("note".utf8))
            result = try await run(["send", bob, "a file", "--attachment", file], "alice")
            #expect(result.status == 6 && result.stderr.contains("attachments are blocked"), "\(result.summary)")
            result = try await run(["backup", "export", directory.sub("alice.backup")], "alice")
            #expect(result.status == 6 && result.stderr.contains("backups are forbidden"), "\(result.summary)")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("alice.backup")))

            result = try await ParleyRelayTests.run(parley, ["policy", "show", "--json"], in: directory, environment: ["PARLEY_POLICY": policyFile])
            let shown = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.summary)")
            let settings = try #require(shown["settings"] as? [String: [String: Any]])
            #expect(settings["require_verified"]?["source"] as? String == "policy" && settings["require_verified"]?["line"] as? Int == 1)
            #expect(settings["unlock"]?["source"] as? String == "default")
            result = try await ParleyRelayTests.run(parley, ["policy", "show"], in: directory, environment: ["PARLEY_POLICY": policyFile])
            #expect(result.stdout.contains("backup               = \"forbidden\"  (policy file, line 3)"), "\(result.summary)")

            // Custodian backups from the command line: made, refused with a stranger's key, restored with the custodian's.
            try policy("backup = \"custodian-only\"\ncustodian_key = \"custodian.key.pub\"\n")
            #expect(try await ParleyRelayTests.run(parley, ["custodian", "keygen", directory.sub("custodian.key")], in: directory).status == 0)
            #expect(try await ParleyRelayTests.run(parley, ["custodian", "keygen", directory.sub("stranger.key")], in: directory).status == 0)
            result = try await run(["backup", "export", directory.sub("alice.backup")], "alice")
            #expect(result.status == 6 && result.stderr.contains("--custodian"), "\(result.summary)")
            result = try await run(["backup", "export", directory.sub("alice.backup"), "--custodian", directory.sub("stranger.key.pub")], "alice")
            #expect(result.status == 6, "\(result.summary)")
            result = try await run(["backup", "export", directory.sub("alice.backup"), "--custodian", directory.sub("custodian.key.pub")], "alice")
            #expect(result.status == 0, "\(result.summary)")
            result = try await run(["backup", "import", directory.sub("alice.backup"), "--custodian-key", directory.sub("stranger.key"), "--offline"], "restored")
            #expect(result.status == 1 && result.stderr.contains("sealed to another custodian key"), "\(result.summary)")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("restored/parley.db")))
            result = try await run(["backup", "import", directory.sub("alice.backup"), "--custodian-key", directory.sub("custodian.key"), "--offline"], "restored")
            #expect(result.status == 0 && result.stdout.contains("restored 1 contact"), "\(result.summary)")
        }
    }

    @Test("the daemon: a refused send and addContact are JSON-RPC errors with code -6")
    func daemon() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            _ = try await CLIHome.create("bob", on: relay, in: directory)
            let bob = "bob@\(relay.name)"
            try await bot.must(["add-contact", bob])
            let policyFile = directory.sub("policy.toml")
            try Data("require_verified = true\nallowed_relays = [\"\(relay.name)\"]\n".utf8).write(to: URL(fileURLWithPath: policyFile))
            let socket = bot.path + ".sock"
            let child = try ChildProcess(bot.parley, ["daemon", "--socket", socket] + bot.options, in: directory,
                                         environment: ["PARLEY_POLICY": policyFile])
            try await eventually("the daemon to listen (stderr: \(child.stderr))") {
                guard child.process.isRunning else { throw FixtureError("the daemon exited: \(child.stderr)") }
                return (try? RPCClient(socket: socket)) != nil
            }
            let client = try RPCClient(socket: socket)
            var response = try await client.call("send", ["recipient": bob, "message": "hello"])
            var error = try #require(response["error"] as? [String: Any], "\(response)")
            #expect(error["code"] as? Int == -6)
            #expect((error["message"] as? String)?.contains("\(bob) is not verified") == true, "\(error)")
            response = try await client.call("addContact", ["recipient": "carol@relay.elsewhere.example:7000"])
            error = try #require(response["error"] as? [String: Any], "\(response)")
            #expect(error["code"] as? Int == -6)
            #expect(try await child.stop() == 0)
        }
    }
}
