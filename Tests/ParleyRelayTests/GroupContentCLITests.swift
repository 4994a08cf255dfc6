import Foundation
import Testing

/// Contents in a group from the shell (`send --group --attachment`, `edit|disappear group:ID`) and from the
/// daemon (sendReaction, sendTyping, sendReceipt, remoteDelete with signal-cli's `groupId`), on a
/// parley-relay process: the adapters over the group operations.
@Suite("End to end: contents in groups from the command line and the daemon")
struct GroupContentCLITests {
    @Test("a file, a reaction, typing, a read receipt, an edit and the timer in a group; unknown and malformed group ids refused")
    func contents() async throws {
        try await withRelay { relay, directory in
            let (alice, bot, aliceAddress, botAddress) = try await CLIHome.pair("alice", "bot", on: relay, in: directory)
            try await bot.must(["receive", "--timeout", "0"])   // publishes the bot's KeyPackages
            let created = try await alice.must(["group", "create", "Ops", botAddress, "--json"])
            let group = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
            let id = try #require(group["id"] as? String), base64 = try #require(group["base64Id"] as? String)

            let file = directory.sub("plan.txt")
            FileManager.default.createFile(atPath: file, contents: Data("step one\n".utf8))
            let sent = try await alice.must(["send", "--group", id, "--attachment", file, "the plan", "--json"])
            let message = try #require(try JSONSerialization.jsonObject(with: Data(sent.stdout.utf8)) as? [String: Any])
            let messageId = try #require(message["id"] as? String), timestamp = try #require(message["timestamp"] as? Int)

            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            let client = try RPCClient(socket: daemon.socket)
            try await eventually("the bot's daemon has the group's message") {
                !((try await client.result("search", ["query": "the plan"]) as? [[String: Any]]) ?? []).isEmpty
            }

            let reacted = try #require(try await client.result("sendReaction", ["groupId": base64, "emoji": "👍", "targetAuthor": aliceAddress,
                                                                                "targetTimestamp": timestamp]) as? [[String: Any]])
            #expect(reacted.first?["recipient"] as? String == "group:\(id)" && reacted.first?["id"] as? String == messageId, "\(reacted)")
            #expect((reacted.first?["reactions"] as? [[String: Any]])?.first?["emoji"] as? String == "👍")
            let typing = try #require(try await client.result("sendTyping", ["groupId": id]) as? [String: Any])
            #expect(typing["recipients"] as? [String] == ["group:\(id)"])
            let receipt = try #require(try await client.result("sendReceipt", ["groupId": base64, "targetTimestamp": timestamp]) as? [String: Any])
            #expect(receipt["messageIds"] as? [String] == [messageId])
            // Alice's message is hers alone to delete; a group this account is not in, and a malformed id.
            let notOwn = try await client.call("remoteDelete", ["groupId": base64, "targetTimestamp": timestamp])
            #expect((notOwn["error"] as? [String: Any])?["code"] as? Int == -1, "\(notOwn)")
            let unknown = try await client.call("sendTyping", ["groupId": Data(repeating: 7, count: 32).base64EncodedString()])
            let unknownError = try #require(unknown["error"] as? [String: Any])
            #expect(unknownError["code"] as? Int == -1 && (unknownError["message"] as? String)?.contains("Group not found") == true, "\(unknown)")
            let malformed = try await client.call("sendReaction", ["groupId": "not a group", "emoji": "👍", "targetTimestamp": timestamp])
            #expect((malformed["error"] as? [String: Any])?["code"] as? Int == -32602, "\(malformed)")
            let both = try await client.call("sendTyping", ["groupId": base64, "recipient": aliceAddress])
            #expect((both["error"] as? [String: Any])?["code"] as? Int == -32602, "\(both)")

            // Alice's side: her message is read and has the bot's reaction.
            try await alice.must(["receive", "--timeout", "0"])
            let found = try await alice.must(["search", "--json", "the plan"])
            #expect(found.stdout.contains("\"state\":\"read\""), "\(found.summary)")
            let reaction = try await alice.must(["react", "group:\(id)", messageId, "🎉", "--json"])
            #expect(reaction.stdout.contains("\"emoji\":\"👍\"") && reaction.stdout.contains("\"emoji\":\"🎉\""), "\(reaction.summary)")

            // Alice edits her message and sets the group's timer; the bot's daemon takes both.
            try await alice.must(["edit", "group:\(id)", messageId, "the new plan"])
            let timer = try await alice.must(["disappear", "group:\(id)", "1h", "--json"])
            #expect(timer.stdout.contains("\"expiration\":3600"), "\(timer.summary)")
            try await eventually("the bot's daemon has the edit") {
                !((try await client.result("search", ["query": "the new plan"]) as? [[String: Any]]) ?? []).isEmpty
            }
            let unknownShell = try await alice.run(["react", "group:" + String(repeating: "ab", count: 32), messageId, "👍"])
            #expect(unknownShell.status == 1 && unknownShell.stderr.contains("no group"), "\(unknownShell.summary)")
            try await daemon.stop()
        }
    }
}
