import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `parley daemon` against a real relay: the JSON-RPC methods, never-lost delivery across unsubscribed
/// periods and restarts, the one-shot mirrors, and the example bots.
@Suite("End to end: headless mode")
struct HeadlessEndToEndTests {
    @Test("messages sent while the daemon is down or nobody is subscribed all arrive on subscribe, once each, across a restart")
    func neverLost() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            let alice = try await CLIHome.create("alice", on: relay, in: directory)
            let botAddress = "bot@\(relay.name)"
            try await alice.must(["add-contact", botAddress])

            // 1. The daemon has never run.
            try await alice.must(["send", botAddress, "m1 before the daemon"])
            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            // 2. The daemon runs, nobody is subscribed: it stores what arrives.
            var client = try RPCClient(socket: daemon.socket)
            try await alice.must(["send", botAddress, "m2 while unsubscribed"])
            try await eventually("the daemon to store m2") { try await (client.result("search", ["query": "m2"]) as? [Any])?.count == 1 }
            // Subscribing replays both, oldest first.
            #expect(try await client.result("subscribeReceive", ["cursor": "test"]) is Int)
            var seen: [String: String] = [:]
            var order: [String] = []
            func take(_ message: (id: String, source: String, text: String)) {
                #expect(message.source == "alice@\(relay.name)")
                if seen[message.id] == nil { order.append(message.text) }
                seen[message.id] = message.text
            }
            take(try await client.nextMessage())
            take(try await client.nextMessage())
            #expect(order == ["m1 before the daemon", "m2 while unsubscribed"])
            // 3. Unsubscribed again, then the daemon is stopped, then a message while it is down.
            #expect(try await client.result("unsubscribeReceive") as? Bool == true)
            try await alice.must(["send", botAddress, "m3 after unsubscribing"])
            try await eventually("the daemon to store m3") { try await (client.result("search", ["query": "m3"]) as? [Any])?.count == 1 }
            try await daemon.stop()
            try await alice.must(["send", botAddress, "m4 while the daemon is down"])
            try await daemon.start()
            client = try RPCClient(socket: daemon.socket)
            _ = try await client.result("subscribeReceive", ["cursor": "test"])
            // Whatever comes before the sentinel is m3 and m4 (a repeat would show up here).
            try await alice.must(["send", botAddress, "m5 sentinel"])
            var after: [String] = []
            while after.last != "m5 sentinel" {
                let message = try await client.nextMessage()
                after.append(message.text)
                take(message)
            }
            #expect(after == ["m3 after unsubscribing", "m4 while the daemon is down", "m5 sentinel"])
            #expect(order == ["m1 before the daemon", "m2 while unsubscribed", "m3 after unsubscribing", "m4 while the daemon is down", "m5 sentinel"])
            try await daemon.stop()
        }
    }

    @Test("methods over the socket: send and receipts, contacts, identities, devices, search, typing, and the error codes")
    func methods() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            let alice = try await CLIHome.create("alice", on: relay, in: directory)
            let aliceAddress = "alice@\(relay.name)", botAddress = "bot@\(relay.name)"
            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            let client = try RPCClient(socket: daemon.socket)

            // Errors: not a contact (-1), bad params (-32602), unknown method (-32601), garbage (-32700).
            let notContact = try await client.call("send", ["recipient": aliceAddress, "message": "hi"])
            #expect((notContact["error"] as? [String: Any])?["code"] as? Int == -1, "\(notContact)")
            #expect(((try await client.call("send", ["recipient": aliceAddress]))["error"] as? [String: Any])?["code"] as? Int == -32602)
            #expect(((try await client.call("sendMessage"))["error"] as? [String: Any])?["code"] as? Int == -32601)
            client.writeLine("{this is not json")
            let parseError = try await client.readObject()
            #expect((parseError["error"] as? [String: Any])?["code"] as? Int == -32700)
            #expect(parseError["id"] is NSNull)

            let contact = try #require(try await client.result("addContact", ["recipient": aliceAddress]) as? [String: Any])
            #expect(contact["address"] as? String == aliceAddress)
            #expect(contact["trustLevel"] as? String == "TRUSTED_UNVERIFIED")
            let contacts = try #require(try await client.result("listContacts") as? [[String: Any]])
            #expect(contacts.map { $0["address"] as? String } == [aliceAddress])
            let identities = try #require(try await client.result("listIdentities") as? [[String: Any]])
            #expect((identities.first?["safetyNumber"] as? String)?.count == 60)
            let devices = try #require(try await client.result("listDevices") as? [[String: Any]])
            #expect(devices.count == 1)
            #expect(devices.first?["thisDevice"] as? Bool == true)

            let sent = try #require(try await client.result("send", ["recipient": aliceAddress, "message": "hello alice\nsecond line"]) as? [String: Any])
            #expect((sent["id"] as? String)?.count == 32)
            #expect(sent["timestamp"] is Int)
            #expect(((sent["results"] as? [[String: Any]])?.first)?["type"] as? String == "SUCCESS")
            _ = try await client.result("sendTyping", ["recipient": aliceAddress])

            // Alice reads it with the one-shot command, and answers; her read receipt reaches the bot.
            let received = try await alice.must(["receive", "--json", "--timeout", "0"])
            #expect(received.stdout.contains("hello alice\\nsecond line"), "\(received.summary)")
            _ = try await client.result("subscribeReceive")
            try await alice.must(["send", botAddress, "hi bot"])
            let message = try await client.nextMessage()
            #expect(message.text == "hi bot")
            let found = try #require(try await client.result("search", ["query": "HELLO ALICE"]) as? [[String: Any]])
            #expect(found.count == 1)
            #expect(found.first?["direction"] as? String == "outgoing")

            // A file from Alice: the notification names it, getAttachment returns it; the bot replies with a file.
            let file = directory.sub("notes.txt")
            try Data("attachment body\n".utf8).write(to: URL(fileURLWithPath: file))
            try await alice.must(["send", botAddress, "see attached", "--attachment", file])
            var withFile: (id: String, source: String, text: String)
            repeat { withFile = try await client.nextMessage() } while withFile.text != "see attached"
            let fetched = try #require(try await client.result("getAttachment", ["recipient": aliceAddress, "id": withFile.id]) as? [String: Any])
            #expect(fetched["filename"] as? String == "notes.txt")
            #expect((fetched["data"] as? String).flatMap { Data(base64Encoded: $0) } == Data("attachment body\n".utf8))
            let saved = directory.sub("saved.txt")
            _ = try await client.result("getAttachment", ["recipient": aliceAddress, "id": withFile.id, "file": saved])
            #expect(FileManager.default.contents(atPath: saved) == Data("attachment body\n".utf8))
            let reply = try #require(try await client.result("send", ["recipient": aliceAddress, "message": "got it", "attachments": [file],
                                                                      "replyTo": withFile.id]) as? [String: Any])
            #expect(((reply["results"] as? [[String: Any]])?.first)?["type"] as? String == "SUCCESS")
            let answer = try await alice.must(["receive", "--json", "--timeout", "0"])
            #expect(answer.stdout.contains("got it"), "\(answer.summary)")

            // The bot marks Alice's message read by its timestamp; her history shows the receipt arrived.
            let history = try #require(try await client.result("search", ["query": "hi bot"]) as? [[String: Any]])
            let timestamp = try #require(history.first?["timestamp"] as? Int)
            let receipt = try #require(try await client.result("sendReceipt", ["recipient": aliceAddress, "targetTimestamp": timestamp]) as? [String: Any])
            #expect((receipt["messageIds"] as? [String]) == [message.id])
            try await eventually("alice to see her message read") {
                try await alice.must(["receive", "--timeout", "0"])
                let search = try await alice.must(["search", "--json", "hi bot"])
                return search.stdout.contains("\"state\":\"read\"")
            }
            let missing = try await client.call("sendReceipt", ["recipient": aliceAddress, "targetTimestamp": 1])
            #expect((missing["error"] as? [String: Any])?["code"] as? Int == -1)

            // verify without digits shows the number; with Alice's digits it verifies.
            let number = try #require(try await client.result("verify", ["recipient": aliceAddress]) as? [String: Any])
            let digits = try #require(number["safetyNumber"] as? String)
            let verified = try #require(try await client.result("verify", ["recipient": aliceAddress, "safetyNumber": digits]) as? [String: Any])
            #expect(verified["result"] as? String == "verified")
            let trusted = try #require(try await client.result("trust", ["recipient": aliceAddress]) as? [String: Any])
            #expect(trusted["trustLevel"] as? String == "TRUSTED_UNVERIFIED")
            try await daemon.stop()
        }
    }

    @Test("one-shot mirrors print JSON and use the documented exit codes")
    func oneShot() async throws {
        try await withRelay { relay, directory in
            let (bot, alice, botAddress, aliceAddress) = try await CLIHome.pair("bot", "alice", on: relay, in: directory)
            let contacts = try await bot.must(["contacts", "--json"])
            let contact = try #require(try JSONSerialization.jsonObject(with: Data(contacts.stdout.utf8)) as? [String: Any])
            #expect(contact["address"] as? String == aliceAddress)
            let devices = try await bot.must(["devices", "--json"])
            #expect(devices.stdout.contains("\"thisDevice\":true"))
            try await bot.must(["send-typing", aliceAddress, "--json"])
            try await alice.must(["send", botAddress, "read me"])
            let got = try await bot.must(["receive", "--json", "--timeout", "0"])
            let line = try #require(got.stdout.split(separator: "\n").first { $0.contains("read me") })
            let object = try #require(((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["envelope"]
                as? [String: Any])?["dataMessage"] as? [String: Any])
            let sentAt = try #require(object["timestamp"] as? Int)
            let receipt = try await bot.must(["send-receipt", aliceAddress, "--target-timestamp", String(sentAt), "--json"])
            #expect(receipt.stdout.contains(object["id"] as? String ?? "-"))
            // Usage error 1; an unknown contact is 1 too; relay down is 3.
            #expect(try await bot.run(["send-receipt", aliceAddress]).status == 1)
            #expect(try await bot.run(["devices", "carol@\(relay.name)"]).status == 1)
            try await relay.stop()
            #expect(try await bot.run(["send-typing", aliceAddress]).status == 3)
            // Completions come from the argument parser and know the new commands.
            let completion = try await ParleyRelayTests.run(bot.parley, ["--generate-completion-script", "bash"], in: directory)
            #expect(completion.status == 0)
            #expect(completion.stdout.contains("daemon") && completion.stdout.contains("send-receipt"))
        }
    }

    @Test("the example bots (bash over stdio, Python over the socket and over HTTP) answer ping, and in a group in the group",
          arguments: ["echo-bot.sh", "echo_bot.py", "http_bot.py"])
    func exampleBot(_ script: String) async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            let user = try await CLIHome.create("user", on: relay, in: directory)
            let botAddress = "bot@\(relay.name)"
            try await user.must(["add-contact", botAddress])
            // A message before the bot starts is answered too (the subscription replays it).
            try await user.must(["send", botAddress, "ping"])
            let path = Binaries.packageRoot + "/examples/" + script
            let environment = ["PARLEY": bot.parley, "PATH": URL(fileURLWithPath: bot.parley).deletingLastPathComponent().path + ":"
                               + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
            var daemon: DaemonProcess?
            let child: ChildProcess
            if script.hasSuffix(".sh") {
                child = try ChildProcess("/bin/bash", [path] + bot.options, in: directory, environment: environment)
            } else if script == "http_bot.py" {
                let port = try RelayProcess.freePort()
                let running = DaemonProcess(home: bot, httpPort: port)
                try await running.start()
                daemon = running
                child = try ChildProcess("/usr/bin/env", ["python3", path, "http://127.0.0.1:\(port)"], in: directory, environment: environment)
            } else {
                let running = DaemonProcess(home: bot)
                try await running.start()
                daemon = running
                child = try ChildProcess("/usr/bin/env", ["python3", path, running.socket], in: directory, environment: environment)
            }
            var replies: [String] = []
            try await eventually("the bot to answer (bot stderr: \(child.stderr))", timeout: .seconds(90)) {
                let result = try await user.must(["receive", "--json", "--timeout", "0"])
                for line in result.stdout.split(separator: "\n") {
                    if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                       let data = (object["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any],
                       let text = data["message"] as? String { replies.append(text) }
                }
                return !replies.isEmpty
            }
            #expect(replies == ["echo: ping"])
            try await user.must(["send", botAddress, "tab\tand \"quotes\""])
            try await eventually("the second answer") {
                let result = try await user.must(["receive", "--json", "--timeout", "0"])
                return result.stdout.contains(#"echo: tab\tand \"quotes\""#)
            }
            // In a group the bot answers in the group: its reply carries the group's id (send with groupId).
            let created = try await user.must(["group", "create", "Echo room", botAddress, "--json"])
            let group = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
            let groupHex = try #require(group["id"] as? String), groupBase64 = try #require(group["base64Id"] as? String)
            try await user.must(["send", "--group", groupHex, "ping the group"])
            var inGroup: [String] = []
            try await eventually("the bot to answer in the group (bot stderr: \(child.stderr))", timeout: .seconds(90)) {
                let result = try await user.must(["receive", "--json", "--timeout", "0"])
                for line in result.stdout.split(separator: "\n") {
                    if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                       let data = (object["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any],
                       let text = data["message"] as? String, (data["groupInfo"] as? [String: Any])?["groupId"] as? String == groupBase64 {
                        inGroup.append(text)
                    }
                }
                return !inGroup.isEmpty
            }
            #expect(inGroup == ["echo: ping the group"])
            // The bots run until killed; the bash bot's daemon then sees the end of its input and exits.
            try await child.stop(SIGKILL)
            try await daemon?.stop()
        }
    }
}
