import Foundation
import Testing

/// The README promises that `--json` prints the objects the daemon's methods return. Every operation that
/// has both surfaces runs through both against one account on a real relay, and the objects are compared.
@Suite("End to end: --json and JSON-RPC give the same objects")
struct SameJSONTests {
    /// One operation: the `parley` arguments (without --json) and the method with its params.
    struct Pair {
        let cli: [String]
        let method: String
        let params: [String: Any]
        /// Members that differ by nature between two runs (a new message's id and time, a chosen path).
        var varying: Set<String> = []
        /// Whether the command's status is 1 though it printed its result (a safety-number mismatch).
        var exitsOne = false
    }

    @Test("contacts, addContact, updateContact, block, unblock, identities, verify, trust, devices, search, attachments, receipts, typing, send")
    func sameObjects() async throws {
        try await withRelay { relay, directory in
            let (bot, alice, botAddress, aliceAddress) = try await CLIHome.pair("bot", "alice", on: relay, in: directory)
            let file = directory.sub("notes.txt")
            try Data("attachment body\n".utf8).write(to: URL(fileURLWithPath: file))
            try await alice.must(["send", botAddress, "hello file", "--attachment", file])
            try await alice.must(["send", botAddress, "hi bot"])
            let received = try await bot.must(["receive", "--json", "--timeout", "0"]).stdout
            let messages = try Self.dataMessages(in: received)
            let withFile = try #require(messages.first { $0["message"] as? String == "hello file" }?["id"] as? String)
            let plain = try #require(messages.first { $0["message"] as? String == "hi bot" })
            let plainId = try #require(plain["id"] as? String), plainTimestamp = try #require(plain["timestamp"] as? Int)
            let wrongDigits = String(repeating: "1", count: 60)

            let pairs: [Pair] = [
                Pair(cli: ["contacts"], method: "listContacts", params: [:]),
                Pair(cli: ["add-contact", aliceAddress], method: "addContact", params: ["recipient": aliceAddress]),
                Pair(cli: ["identities"], method: "listIdentities", params: [:]),
                Pair(cli: ["verify", aliceAddress], method: "verify", params: ["recipient": aliceAddress]),
                Pair(cli: ["verify", aliceAddress, "--digits", wrongDigits], method: "verify",
                     params: ["recipient": aliceAddress, "safetyNumber": wrongDigits], exitsOne: true),
                Pair(cli: ["trust", aliceAddress], method: "trust", params: ["recipient": aliceAddress]),
                Pair(cli: ["devices"], method: "listDevices", params: [:]),
                Pair(cli: ["devices", aliceAddress], method: "listDevices", params: ["recipient": aliceAddress]),
                Pair(cli: ["search", "hello file"], method: "search", params: ["query": "hello file"]),
                Pair(cli: ["search", "file", "--contact", aliceAddress, "--limit", "1"], method: "search",
                     params: ["query": "file", "recipient": aliceAddress, "limit": 1]),
                Pair(cli: ["get-attachment", aliceAddress, withFile, "--output", directory.sub("by-cli.txt")], method: "getAttachment",
                     params: ["recipient": aliceAddress, "id": withFile, "file": directory.sub("by-rpc.txt")], varying: ["file"]),
                Pair(cli: ["send-receipt", aliceAddress, "--target-timestamp", String(plainTimestamp)], method: "sendReceipt",
                     params: ["recipient": aliceAddress, "targetTimestamp": plainTimestamp]),
                Pair(cli: ["send-receipt", aliceAddress, "--message-id", plainId, "--type", "delivered"], method: "sendReceipt",
                     params: ["recipient": aliceAddress, "messageId": plainId, "type": "delivered"]),
                Pair(cli: ["send-typing", aliceAddress], method: "sendTyping", params: ["recipient": aliceAddress]),
                Pair(cli: ["send-typing", aliceAddress, "--stop"], method: "sendTyping", params: ["recipient": aliceAddress, "stop": true]),
                Pair(cli: ["send", aliceAddress, "same shape"], method: "send", params: ["recipient": aliceAddress, "message": "same shape"],
                     varying: ["id", "timestamp"]),
                // Contacts as people; each pair left as it was found, so the listContacts above agree.
                Pair(cli: ["contacts", "rename", aliceAddress, "Ally"], method: "updateContact", params: ["recipient": aliceAddress, "name": "Ally"]),
                Pair(cli: ["block", "ally"], method: "block", params: ["recipient": "ally"]),
                Pair(cli: ["unblock", aliceAddress], method: "unblock", params: ["recipient": [aliceAddress]]),
                Pair(cli: ["contacts", "rename", "alice", ""], method: "updateContact", params: ["recipient": "alice", "name": ""]),
            ]

            // The command line first (the daemon holds the account while it runs), then the methods.
            var printed: [[Any]] = []
            for pair in pairs {
                let result = try await bot.run(pair.cli + ["--json"])
                #expect(result.status == (pair.exitsOne ? 1 : 0), "parley \(pair.cli.joined(separator: " ")): \(result.summary)")
                printed.append(try result.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) })
            }
            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            let client = try RPCClient(socket: daemon.socket)
            for (pair, lines) in zip(pairs, printed) {
                let returned = try await client.result(pair.method, pair.params)
                // A list is printed one object per line; anything else is one line.
                let objects = (returned as? [Any]) ?? [returned]
                #expect(!objects.isEmpty, "\(pair.method) returned nothing to compare")
                #expect(Self.normalised(lines, pair.varying) == Self.normalised(objects, pair.varying),
                        "parley \(pair.cli.joined(separator: " ")) --json printed \(lines), \(pair.method) returned \(objects)")
            }
            #expect(FileManager.default.contents(atPath: directory.sub("by-cli.txt")) == FileManager.default.contents(atPath: directory.sub("by-rpc.txt")))
            try await daemon.stop()
        }
    }

    /// What arrives: a text, a reply, a file, a read receipt and a typing indicator, received once by
    /// `parley receive --json` and once by the daemon (its messages replayed from the store on
    /// subscribeReceive, the receipt and the indicator sent again while it is subscribed), give the same
    /// objects. Only what is by nature per process differs: the daemon's `subscription` (which of its
    /// subscriptions a line is for; the command line has none), and a receipt's or indicator's
    /// `timestamp`/`when`, the moment it was handled (they carry no time of their own).
    @Test("receive: messages (text, reply, attachment), a read receipt and typing, by receive --json and the receive notification")
    func sameReceivedObjects() async throws {
        try await withRelay { relay, directory in
            let (bot, alice, botAddress, aliceAddress) = try await CLIHome.pair("bot", "alice", on: relay, in: directory)
            // A message of the bot's for Alice to answer and to mark read.
            let asked = try await bot.must(["send", aliceAddress, "question", "--json"]).stdout
            let question = try #require((try JSONSerialization.jsonObject(with: Data(asked.utf8)) as? [String: Any])?["id"] as? String)
            try await alice.must(["receive", "--timeout", "0"])
            let file = directory.sub("notes.txt")
            try Data("attachment body\n".utf8).write(to: URL(fileURLWithPath: file))
            try await alice.must(["send", botAddress, "plain text"])
            try await alice.must(["send", botAddress, "an answer", "--reply-to", question])
            try await alice.must(["send", botAddress, "a file", "--attachment", file])
            func readAndType() async throws {
                try await alice.must(["send-receipt", botAddress, "--message-id", question])
                try await alice.must(["send-typing", botAddress])
            }
            try await readAndType()

            let printed = try await bot.must(["receive", "--json", "--timeout", "0"])
            let byCLI = try printed.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "not an object: \($0)")
            }.filter { Self.kind($0) != "receiptMessage:DELIVERY" }  // sent by alice's receive, before the daemon ran

            let daemon = DaemonProcess(home: bot)
            try await daemon.start()
            let client = try RPCClient(socket: daemon.socket)
            _ = try await client.result("subscribeReceive")
            try await readAndType()
            let expected = ["dataMessage": 3, "receiptMessage:READ": 1, "typingMessage": 1]
            var byDaemon: [[String: Any]] = []
            while Self.kinds(byDaemon) != expected {
                let object = try await client.readObject()
                guard object["method"] as? String == "receive", var params = object["params"] as? [String: Any] else { continue }
                #expect(params.removeValue(forKey: "subscription") is Int)
                byDaemon.append(params)
            }
            try await daemon.stop()

            #expect(Self.kinds(byCLI) == expected, "\(printed.stdout)")
            for kind in expected.keys {
                let cli = byCLI.filter { Self.kind($0) == kind }, rpc = byDaemon.filter { Self.kind($0) == kind }
                let varying: Set<String> = kind == "dataMessage" ? [] : ["timestamp", "when"]
                #expect(Self.normalised(Self.sortedById(cli), varying) == Self.normalised(Self.sortedById(rpc), varying),
                        "\(kind): receive --json printed \(cli), the notification carried \(rpc)")
            }
            // The reply names the question, the file is described, and the receipt gives the question's time.
            let data = byCLI.compactMap { ($0["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any] }
            #expect((data.first { $0["message"] as? String == "an answer" }?["quote"] as? [String: Any])?["id"] as? String == question)
            #expect(((data.first { $0["message"] as? String == "a file" }?["attachments"] as? [[String: Any]])?.first)?["filename"] as? String == "notes.txt")
            #expect(printed.stdout.contains(#""messageIds":["\#(question)"]"#), "\(printed.stdout)")
        }
    }

    /// The `dataMessage` objects of `receive --json` lines.
    static func dataMessages(in lines: String) throws -> [[String: Any]] {
        try lines.split(separator: "\n").compactMap {
            ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any]
        }
    }

    /// What a `receive` params object carries: dataMessage, receiptMessage:TYPE, typingMessage or syncMessage.
    static func kind(_ params: [String: Any]) -> String {
        let envelope = params["envelope"] as? [String: Any] ?? [:]
        if let receipt = envelope["receiptMessage"] as? [String: Any] { return "receiptMessage:" + (receipt["type"] as? String ?? "") }
        return ["dataMessage", "typingMessage", "syncMessage"].first { envelope[$0] != nil } ?? "other"
    }

    static func kinds(_ objects: [[String: Any]]) -> [String: Int] { objects.reduce(into: [:]) { $0[kind($1), default: 0] += 1 } }

    static func sortedById(_ objects: [[String: Any]]) -> [Any] {
        func id(_ object: [String: Any]) -> String { (((object["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any])?["id"] as? String) ?? "" }
        return objects.sorted { id($0) < id($1) }
    }

    /// The objects with the varying members replaced by their JSON type (so their presence and kind still
    /// count), at any depth, as one comparable value.
    static func normalised(_ objects: [Any], _ varying: Set<String>) -> NSArray {
        func kind(_ value: Any) -> String {
            switch value {
            case is String: "<string>"
            case is NSNumber: "<number>"
            case is NSNull: "<null>"
            default: "<\(type(of: value))>"
            }
        }
        func walk(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                var out: [String: Any] = [:]
                for (key, member) in object { out[key] = varying.contains(key) ? kind(member) : walk(member) }
                return out as NSDictionary
            }
            if let array = value as? [Any] { return array.map(walk) as NSArray }
            return value
        }
        return objects.map(walk) as NSArray
    }
}
