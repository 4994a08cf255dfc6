import Foundation
import Testing

/// signal-cli's group methods over the daemon's socket, on a parley-relay process: two accounts each with
/// its own daemon, a third with the one-shot CLI. A group message arrives as a `receive` notification with
/// `dataMessage.groupInfo`, the same object `parley receive --json` prints.
@Suite("Headless: groups over the daemon's socket")
struct HeadlessGroupTests {
    /// The `params` of the next `receive` notification whose dataMessage has a text; notifications read
    /// meanwhile are skipped.
    static func nextGroupMessage(_ client: RPCClient) async throws -> [String: Any] {
        while true {
            let object = try await client.readObject()
            guard object["method"] as? String == "receive", var params = object["params"] as? [String: Any],
                  let data = (params["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any], data["message"] is String else { continue }
            params["subscription"] = nil
            return params
        }
    }

    static func groupInfo(_ params: [String: Any]) -> [String: String] {
        (((params["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any])?["groupInfo"] as? [String: String]) ?? [:]
    }

    @Test("updateGroup, listGroups, send with groupId, a member's daemon notified with groupInfo (as receive --json prints it), rename, add, remove, quitGroup")
    func groupsOverTheSocket() async throws {
        try await withRelay { relay, directory in
            let bot = try await CLIHome.create("bot", on: relay, in: directory)
            let alice = try await CLIHome.create("alice", on: relay, in: directory)
            let carol = try await CLIHome.create("carol", on: relay, in: directory)
            let (botAddress, aliceAddress, carolAddress) = ("bot@\(relay.name)", "alice@\(relay.name)", "carol@\(relay.name)")
            for (home, contacts) in [(bot, [aliceAddress, carolAddress]), (alice, [botAddress, carolAddress]), (carol, [botAddress, aliceAddress])] {
                for contact in contacts { try await home.must(["add-contact", contact]) }
                try await home.must(["receive", "--timeout", "0"])   // publishes the home's KeyPackages
            }
            let botDaemon = DaemonProcess(home: bot)
            try await botDaemon.start()
            let botClient = try RPCClient(socket: botDaemon.socket)

            // The bot creates the group with Alice and writes to it.
            let created = try #require(try await botClient.result("updateGroup", ["name": "Ops", "member": [aliceAddress]]) as? [String: Any])
            let groupId = try #require(created["groupId"] as? String)
            let listed = try #require(try await botClient.result("listGroups") as? [[String: Any]])
            #expect(listed.count == 1 && listed.first?["id"] as? String == groupId && listed.first?["name"] as? String == "Ops")
            #expect((listed.first?["members"] as? [[String: Any]])?.compactMap { $0["number"] as? String } == [botAddress, aliceAddress])
            let sent = try #require(try await botClient.result("send", ["groupId": groupId, "message": "deploy at 5"]) as? [String: Any])
            #expect(sent["groupId"] as? String == groupId)

            // Alice reads it with the one-shot command; then her daemon replays the same message (its cursor
            // starts at the beginning): the two objects are the same.
            let printed = try await alice.must(["receive", "--json", "--timeout", "0"]).stdout
            let byCLI = try printed.split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .filter { ((($0["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any])?["message"] as? String) == "deploy at 5" }
            #expect(byCLI.count == 1, "\(printed)")
            let aliceDaemon = DaemonProcess(home: alice)
            try await aliceDaemon.start()
            let aliceClient = try RPCClient(socket: aliceDaemon.socket)
            _ = try await aliceClient.result("subscribeReceive")
            let replayed = try await Self.nextGroupMessage(aliceClient)
            #expect(NSDictionary(dictionary: replayed) == NSDictionary(dictionary: try #require(byCLI.first)),
                    "receive --json printed \(byCLI), the notification carried \(replayed)")
            #expect(Self.groupInfo(replayed) == ["groupId": groupId, "groupName": "Ops", "type": "DELIVER"])
            #expect((replayed["envelope"] as? [String: Any])?["source"] as? String == botAddress)

            // Alice answers through her daemon; the bot's subscription gets it with groupInfo.
            _ = try await botClient.result("subscribeReceive")
            _ = try await aliceClient.result("send", ["groupId": groupId, "message": "on it"])
            let answer = try await Self.nextGroupMessage(botClient)
            #expect(((answer["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any])?["message"] as? String == "on it")
            #expect(Self.groupInfo(answer)["groupId"] == groupId && Self.groupInfo(answer)["type"] == "DELIVER")

            // The bot renames it; Alice's daemon adds Carol; Carol's `parley receive` names the group.
            _ = try await botClient.result("updateGroup", ["groupId": groupId, "name": "Ops team"])
            try await eventually("Alice's daemon to have the new name") {
                (try await aliceClient.result("listGroups") as? [[String: Any]])?.first?["name"] as? String == "Ops team"
            }
            _ = try await aliceClient.result("updateGroup", ["groupId": groupId, "member": carolAddress])
            try await eventually("the bot's daemon to see Carol join") {
                let members = ((try await botClient.result("listGroups") as? [[String: Any]])?.first?["members"] as? [[String: Any]]) ?? []
                return members.contains { $0["number"] as? String == carolAddress }
            }
            _ = try await botClient.result("send", ["groupId": groupId, "message": "welcome Carol"])
            // Carol's one-shot receive: her joining and learning the name as signal-cli's group UPDATEs, then the message.
            let carolSaw = try await carol.must(["receive", "--json", "--timeout", "0"])
            let lines = try carolSaw.stdout.split(separator: "\n").compactMap {
                ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any]
            }
            #expect(lines.map { ($0["groupInfo"] as? [String: Any])?["type"] as? String } == ["UPDATE", "UPDATE", "DELIVER"], "\(carolSaw.summary)")
            #expect(lines.map { ($0["groupChange"] as? [String: Any])?["type"] as? String } == ["JOINED", "RENAMED", nil])
            #expect(lines.last?["message"] as? String == "welcome Carol" && (lines.last?["groupInfo"] as? [String: Any])?["groupName"] as? String == "Ops team")
            #expect(lines.allSatisfy { ($0["groupInfo"] as? [String: Any])?["groupId"] as? String == groupId })

            // The bot removes Carol; Alice leaves.
            _ = try await botClient.result("updateGroup", ["groupId": groupId, "removeMember": [carolAddress]])
            let members = ((try await botClient.result("listGroups") as? [[String: Any]])?.first?["members"] as? [[String: Any]]) ?? []
            #expect(members.compactMap { $0["number"] as? String } == [botAddress, aliceAddress])
            let quit = try #require(try await aliceClient.result("quitGroup", ["groupId": groupId]) as? [String: Any])
            #expect(quit["timestamp"] is Int)
            #expect((try await aliceClient.result("listGroups") as? [[String: Any]])?.first?["isMember"] as? Bool == false)
            let refused = try await aliceClient.call("send", ["groupId": groupId, "message": "still here?"])
            #expect((refused["error"] as? [String: Any])?["code"] as? Int == -1, "\(refused)")

            try await aliceDaemon.stop()
            try await botDaemon.stop()
        }
    }
}
