import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// The policy keys where the first round left gaps: allowed_relays for a stranger who writes first, and
/// the daemon's getPolicy, attachments, trust_new_identities and unlock.
@Suite("Policy: strangers outside allowed_relays, and the daemon's remaining keys")
struct PolicyLeftoversTests {
    @Test("a stranger on a relay outside allowed_relays is not added: their message is dropped and announced")
    func strangerOutsideAllowedRelays() async throws {
        try await withRelay { relay, directory in
            let elsewhere = try TemporaryDirectory()
            try await withRelay(in: elsewhere) { other, otherDirectory in
                let bobDevice = try await TestDevice.create("bob", on: relay, in: directory)
                let alice = try await TestDevice.create("alice", on: relay, in: directory)
                let carol = try await TestDevice.create("carol", on: other, in: otherDirectory)
                let bobAddress = await bobDevice.address, aliceAddress = await alice.address, carolAddress = await carol.address
                var policy = Policy()
                policy.allowedRelays = [relay.name]
                let bob = try Engine(store: bobDevice.store, relay: bobDevice.engine.relay, admitting: policy.contactAdmission)

                try await carol.engine.addContact(bobAddress)
                try await carol.engine.send(text: "hello from elsewhere", to: bobAddress)
                let events = try await bob.receivePending()
                let refused = events.compactMap { if case .refusedByPolicy(let address, let reason) = $0 { (address, reason) } else { nil } }
                #expect(refused.map(\.0) == [carolAddress], "\(events)")
                #expect(refused.first?.1.contains("is not one of the allowed relays") == true)
                #expect(try bobDevice.store.contact(carolAddress) == nil)
                #expect(try bobDevice.store.messages(in: .direct(carolAddress), limit: 10).isEmpty)
                #expect(try bobDevice.store.deviceIdsWithSessions(of: carolAddress).isEmpty)
                // Acknowledged: it does not come back.
                #expect(try await bob.receivePending().isEmpty)

                // A stranger on an allowed relay is taken as before.
                try await alice.engine.addContact(bobAddress)
                try await alice.engine.send(text: "hello from here", to: bobAddress)
                _ = try await bob.receivePending()
                #expect(try bobDevice.store.contact(aliceAddress) != nil)
                #expect(try bobDevice.incomingTexts(from: aliceAddress) == ["hello from here"])
            }
        }
    }

    @Test("the daemon: getPolicy shows the policy; attachments, trust_new_identities and unlock are enforced")
    func daemonKeys() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            _ = try await CLIHome.create("bob", on: relay, in: directory)
            _ = try await CLIHome.create("carol", on: relay, in: directory)
            let bob = "bob@\(relay.name)", carol = "carol@\(relay.name)"
            try await bot.must(["add-contact", bob])
            let policyFile = directory.sub("policy.toml")
            func policy(_ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: policyFile)) }

            // unlock = "passphrase": a daemon unlocked by a key file does not start.
            try policy("unlock = \"passphrase\"\n")
            let refused = try ChildProcess(bot.parley, ["daemon", "--socket", bot.path + ".refused.sock"] + bot.options, in: directory,
                                           environment: ["PARLEY_POLICY": policyFile])
            try await eventually("the daemon to stop (stderr: \(refused.stderr))") { !refused.process.isRunning }
            #expect(refused.process.terminationStatus == 6 && refused.stderr.contains("key file"), "\(refused.stderr)")

            try policy("attachments = \"block\"\ntrust_new_identities = \"never\"\n")
            let socket = bot.path + ".sock"
            let child = try ChildProcess(bot.parley, ["daemon", "--socket", socket] + bot.options, in: directory,
                                         environment: ["PARLEY_POLICY": policyFile])
            try await eventually("the daemon to listen (stderr: \(child.stderr))") {
                guard child.process.isRunning else { throw FixtureError("the daemon exited: \(child.stderr)") }
                return (try? RPCClient(socket: socket)) != nil
            }
            let client = try RPCClient(socket: socket)
            var response = try await client.call("getPolicy", [:])
            let shown = try #require(response["result"] as? [String: Any], "\(response)")
            #expect(shown["file"] as? String == policyFile)
            let settings = try #require(shown["settings"] as? [String: [String: Any]])
            #expect(settings["attachments"]?["value"] as? String == "block" && settings["attachments"]?["line"] as? Int == 1)
            #expect(settings["trust_new_identities"]?["source"] as? String == "policy")
            #expect(settings["require_verified"]?["source"] as? String == "default")

            let file = directory.sub("note.txt")
            FileManager.default.createFile(atPath: file, contents: Data("note".utf8))
            response = try await client.call("send", ["recipient": bob, "message": "a file", "attachments": [file]])
            var error = try #require(response["error"] as? [String: Any], "\(response)")
            #expect(error["code"] as? Int == -6 && (error["message"] as? String)?.contains("attachments are blocked") == true, "\(error)")

            // trust_new_identities = "never" is forced on the daemon: a new contact's key is not trusted.
            response = try await client.call("addContact", ["recipient": carol])
            let added = try #require(response["result"] as? [String: Any], "\(response)")
            #expect(added["trustLevel"] as? String == "UNTRUSTED", "\(added)")
            response = try await client.call("send", ["recipient": carol, "message": "hi"])
            error = try #require(response["error"] as? [String: Any], "\(response)")
            #expect(error["code"] as? Int == -4, "\(error)")
            #expect(try await child.stop() == 0)
        }
    }
}
