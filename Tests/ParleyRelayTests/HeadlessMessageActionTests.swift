import Foundation
import Testing

/// The daemon's signal-cli names for message actions, over its socket with a real relay: sendReaction,
/// remoteDelete and send with editTimestamp reach a contact using the one-shot CLI, and the contact's
/// reaction (`parley react`) arrives as a `receive` notification with dataMessage.reaction.
@Suite("Headless: reactions, edits and deletes")
struct HeadlessMessageActionTests {
    @Test("sendReaction, send with editTimestamp and remoteDelete; a contact's reaction as dataMessage.reaction")
    func actions() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            let alice = try await CLIHome.create("alice", on: relay, in: directory)
            let aliceAddress = "alice@\(relay.name)", botAddress = "bot@\(relay.name)"
            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            let client = try RPCClient(socket: daemon.socket)
            _ = try await client.result("addContact", ["recipient": aliceAddress])

            let sent = try #require(try await client.result("send", ["recipient": aliceAddress, "message": "helo alice"]) as? [String: Any])
            let timestamp = try #require(sent["timestamp"] as? Int)
            try await alice.must(["receive", "--timeout", "0"])
            try await alice.must(["send", botAddress, "hi bot"])
            _ = try await client.result("subscribeReceive")
            let hi = try await client.nextMessage()
            let found = try #require(try await client.result("search", ["query": "hi bot"]) as? [[String: Any]])
            let hiTimestamp = try #require(found.first?["timestamp"] as? Int)

            // The bot reacts to Alice's message, fixes its typo, and deletes another message.
            let reacted = try #require(try await client.result("sendReaction", ["recipient": aliceAddress, "emoji": "👍", "targetAuthor": aliceAddress,
                                                                                "targetTimestamp": hiTimestamp]) as? [[String: Any]])
            #expect((reacted.first?["reactions"] as? [[String: Any]])?.first?["emoji"] as? String == "👍")
            #expect(reacted.first?["id"] as? String == hi.id)
            let edited = try #require(try await client.result("send", ["recipient": aliceAddress, "message": "hello alice",
                                                                       "editTimestamp": timestamp]) as? [[String: Any]])
            #expect(edited.first?["edited"] as? Bool == true && edited.first?["message"] as? String == "hello alice")
            let oops = try #require(try await client.result("send", ["recipient": aliceAddress, "message": "oops"]) as? [String: Any])
            let oopsTimestamp = try #require(oops["timestamp"] as? Int)
            let deleted = try #require(try await client.result("remoteDelete", ["recipient": aliceAddress,
                                                                               "targetTimestamp": oopsTimestamp]) as? [[String: Any]])
            #expect(deleted.first?["deleted"] as? Bool == true)

            // Only one's own messages: deleting or editing Alice's is refused with a user error; a second
            // emoji or none is refused as bad input.
            let refused = try await client.call("remoteDelete", ["recipient": aliceAddress, "targetTimestamp": hiTimestamp])
            #expect((refused["error"] as? [String: Any])?["code"] as? Int == -1, "\(refused)")
            let notEmoji = try await client.call("sendReaction", ["recipient": aliceAddress, "emoji": "ok", "targetTimestamp": timestamp,
                                                                  "targetAuthor": botAddress])
            #expect(notEmoji["error"] != nil, "\(notEmoji)")

            // Alice's side, as the one-shot receive prints the daemon's notification params.
            let received = try await alice.must(["receive", "--json", "--timeout", "0"])
            #expect(received.stdout.contains("\"reaction\":{"), "\(received.summary)")
            #expect(received.stdout.contains("\"editMessage\":{"), "\(received.summary)")
            #expect(received.stdout.contains("\"remoteDelete\":{"), "\(received.summary)")
            let history = try await alice.must(["search", "--json", "hello alice"])
            #expect(history.stdout.contains("hello alice"), "the edit replaced the text: \(history.summary)")

            // Alice reacts from the shell (MESSAGE as the bot's timestamp); the bot's subscription gets it.
            try await alice.must(["react", botAddress, String(timestamp), "🎉"])
            var reaction: [String: Any]?
            while reaction == nil {
                let object = try await client.readObject()
                let data = ((object["params"] as? [String: Any])?["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any]
                reaction = data?["reaction"] as? [String: Any]
            }
            #expect(reaction?["emoji"] as? String == "🎉")
            #expect(reaction?["targetSentTimestamp"] as? Int == timestamp)
            #expect(reaction?["targetAuthor"] as? String == botAddress)
            #expect(reaction?["isRemove"] as? Bool == false)

            // The shell's edit and delete: Alice's own message by id; the bot's is refused (exit 1), unchanged.
            let edit = try await alice.must(["edit", botAddress, hi.id, "hi, bot", "--json"])
            #expect(edit.stdout.contains("\"edited\":true") && edit.stdout.contains("\"message\":\"hi, bot\""), "\(edit.summary)")
            let notHers = try await alice.run(["delete", botAddress, String(timestamp)])
            #expect(notHers.status == 1 && notHers.stderr.contains("only your own messages"), "\(notHers.summary)")
            let delete = try await alice.must(["delete", botAddress, hi.id])
            #expect(delete.stdout.hasPrefix("deleted \(hi.id)"), "\(delete.summary)")
            try await daemon.stop()
        }
    }
}
