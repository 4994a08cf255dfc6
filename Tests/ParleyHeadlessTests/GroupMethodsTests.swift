import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
import Testing

/// signal-cli's group methods on a daemon (its HTTP endpoint, the dispatcher every transport shares), with
/// members that are engines of their own, all on one in-process relay with real store files.
@Suite("Headless: signal-cli's group methods")
struct GroupMethodsTests {
    /// A daemon serving the bot, and Alice and Carol as ordinary clients; everyone a contact of everyone,
    /// the clients' KeyPackages on the relay.
    static func world() async throws -> (daemon: DaemonFixture, bot: String, alice: ClientDevice, carol: ClientDevice) {
        let daemon = try await DaemonFixture(served: ["bot"], others: ["alice", "carol"])
        let bot = daemon.served[0], alice = daemon.others[0], carol = daemon.others[1]
        let devices = [bot, alice, carol]
        for device in devices {
            for other in devices where other !== device { try await device.engine.addContact(await other.address) }
            try await device.engine.stockKeyPackages()
        }
        return (daemon, await bot.address.description, alice, carol)
    }

    /// The response object of one request.
    static func call(_ daemon: DaemonFixture, _ method: String, _ params: JSONValue = [:]) async throws -> JSONValue {
        let body = JSONValue.object(["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]).serialized
        return try #require(try await daemon.rpc(body).json)
    }

    static func result(_ daemon: DaemonFixture, _ method: String, _ params: JSONValue = [:]) async throws -> JSONValue {
        let response = try await call(daemon, method, params)
        return try #require(response["result"], "\(method) failed: \(response.serialized)")
    }

    /// The error code and message of a call that must fail.
    static func error(_ daemon: DaemonFixture, _ method: String, _ params: JSONValue) async throws -> (code: Int64?, message: String) {
        let response = try await call(daemon, method, params)
        #expect(response["result"] == nil, "\(method) \(params.serialized) succeeded: \(response.serialized)")
        return (response["error"]?["code"]?.intValue, response["error"]?["message"]?.stringValue ?? "")
    }

    static func texts(_ device: ClientDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.direction != .system }.map(\.text)
    }

    @Test("updateGroup creates and changes a group, listGroups gives signal-cli's objects, send with groupId reaches every member, a member's message arrives with groupInfo, quitGroup leaves")
    func lifeOfAGroup() async throws {
        let (daemon, bot, alice, carol) = try await Self.world()
        let aliceAddress = await alice.address.description, carolAddress = await carol.address.description

        // Created with Alice; the name's escape sequence is dropped (the members chose it).
        let created = try await Self.result(daemon, "updateGroup", ["name": "Ops\u{1B}[2J", "member": [.string(aliceAddress)]])
        let groupId = try #require(created["groupId"]?.stringValue)
        let id = try GroupId([UInt8](try #require(Data(base64Encoded: groupId))))
        #expect(created["timestamp"]?.intValue != nil)
        #expect(created["results"] == [["recipient": .string(aliceAddress), "groupId": .string(groupId), "type": "SUCCESS"]])

        let listed = try await Self.result(daemon, "listGroups")
        #expect(listed == [[
            "id": .string(groupId), "name": "Ops[2J", "description": "", "isMember": true, "isBlocked": false,
            "messageExpirationTime": 0,
            "members": [["number": .string(bot), "uuid": nil, "isAdmin": false], ["number": .string(aliceAddress), "uuid": nil, "isAdmin": false]],
            "pendingMembers": [], "requestingMembers": [], "admins": [], "banned": [],
            "permissionAddMember": "EVERY_MEMBER", "permissionEditDetails": "EVERY_MEMBER", "permissionSendMessage": "EVERY_MEMBER",
            "groupInviteLink": nil,
        ]], "\(listed.serialized)")
        // The filter: this group by its id (either spelling), an id of no group of this account left out.
        let other = Data(repeating: 7, count: 32).base64EncodedString()
        #expect(try await Self.result(daemon, "listGroups", ["groupId": .string(groupId)]).arrayValue?.count == 1)
        #expect(try await Self.result(daemon, "listGroups", ["groupId": .string(id.hex), "detailed": true]).arrayValue?.count == 1)
        #expect(try await Self.result(daemon, "listGroups", ["groupId": .string(other)]) == [])

        // The bot writes to the group; Alice reads it, in the group's conversation.
        let sent = try await Self.result(daemon, "send", ["groupId": .string(groupId), "message": "deploy at 5"])
        #expect(sent["groupId"] == .string(groupId) && sent["timestamp"]?.intValue != nil)
        #expect(sent["results"]?.arrayValue?.map { $0["recipient"] } == [.string(aliceAddress)])
        #expect(sent["results"]?.arrayValue?.first?["type"] == "SUCCESS")
        try await alice.engine.receivePending()
        #expect(try Self.texts(alice, id) == ["deploy at 5"])
        #expect(try alice.store.group(id)?.name == "Ops[2J")

        // A reply quoting a message, and an edit of the first message, in the group (the in-process relay serves
        // no attachments: GroupAttachmentTests send one to a group through a relay process).
        let file = try await Self.result(daemon, "send", ["groupId": .string(groupId), "message": "the plan"])
        _ = try await Self.result(daemon, "send", ["groupId": .string(groupId), "message": "see above",
                                                   "quoteTimestamp": try #require(file["timestamp"]), "quoteAuthor": .string(bot)])
        _ = try await Self.result(daemon, "send", ["groupId": .string(groupId), "message": "deploy at 6", "editTimestamp": try #require(sent["timestamp"])])
        try await alice.engine.receivePending()
        let received = try alice.store.messages(in: .group(id), limit: 100).filter { $0.direction != .system }
        #expect(received.first { $0.text == "see above" }?.replyTo == received.first { $0.text == "the plan" }?.clientMessageId)
        #expect(received.first?.text == "deploy at 6", "the edit replaced the first message's text")

        // Alice answers in the group: the bot's event stream has it with dataMessage.groupInfo.
        let (stream, status) = try await RawHTTP.events(port: daemon.port)
        #expect(status == 200)
        _ = try await alice.engine.send(text: "on it", toGroup: id)
        let event = try #require(try await EventStreamTests.message(stream))
        let envelope = try #require(event.json?["envelope"])
        #expect(envelope["source"] == .string(aliceAddress))
        #expect(envelope["dataMessage"]?["message"] == "on it")
        #expect(envelope["dataMessage"]?["groupInfo"] == ["groupId": .string(groupId), "groupName": "Ops[2J", "type": "DELIVER"])

        // Alice renames it: the bot's stream has signal-cli's UPDATE, with what changed.
        _ = try await alice.engine.renameGroup(id, to: "Ops\u{202E}crew")
        var update: JSONValue?
        while update == nil, let event = try await stream.event() {
            if event.json?["envelope"]?["dataMessage"]?["groupInfo"]?["type"] == "UPDATE" { update = event.json?["envelope"] }
        }
        #expect(update?["dataMessage"]?["groupInfo"] == ["groupId": .string(groupId), "groupName": "Opscrew", "type": "UPDATE"])
        #expect(update?["dataMessage"]?["groupChange"] == ["type": "RENAMED", "name": "Opscrew"])
        #expect(update?["dataMessage"]?["message"] == .null && update?["source"] == nil)

        // Rename, add Carol, remove Alice: each reaches the members.
        _ = try await Self.result(daemon, "updateGroup", ["groupId": .string(groupId), "name": "Ops team"])
        try await alice.engine.receivePending()
        #expect(try alice.store.group(id)?.name == "Ops team")
        let added = try await Self.result(daemon, "updateGroup", ["groupId": .string(groupId), "members": [.string(carolAddress)]])
        #expect(Set(added["results"]?.arrayValue?.compactMap { $0["recipient"]?.stringValue } ?? []) == [aliceAddress, carolAddress])
        try await carol.engine.receivePending()
        #expect(try carol.store.group(id)?.active == true)
        _ = try await Self.result(daemon, "updateGroup", ["groupId": .string(groupId), "removeMember": .string(aliceAddress)])
        let members = try await Self.result(daemon, "listGroups")[0]?["members"]?.arrayValue?.compactMap { $0["number"]?.stringValue }
        #expect(members.map(Set.init) == [bot, carolAddress])
        _ = try await Self.result(daemon, "send", ["groupId": .string(groupId), "message": "just us"])
        try await carol.engine.receivePending()
        try await alice.engine.receivePending()
        #expect(try Self.texts(carol, id) == ["just us"])
        #expect(try !Self.texts(alice, id).contains("just us"), "a removed member reads nothing more")

        // The bot leaves: no longer a member; leaving again is a success that sends nothing; sending is refused.
        let quit = try await Self.result(daemon, "quitGroup", ["groupId": .string(groupId)])
        #expect(quit["results"]?.arrayValue?.map { $0["recipient"] } == [.string(carolAddress)])
        #expect(try await Self.result(daemon, "listGroups")[0]?["isMember"] == false)
        #expect(try await Self.result(daemon, "quitGroup", ["groupId": .string(groupId)]) == ["results": []])
        let refused = try await Self.error(daemon, "send", ["groupId": .string(groupId), "message": "still here?"])
        #expect(refused.code == -1 && refused.message == "User is not a member in group: Ops team (\(groupId))", "\(refused)")
    }

    @Test("an unknown or malformed group id, parameters Parley cannot honour, and contradictory ones: the documented error, and nothing changes")
    func refusals() async throws {
        let (daemon, _, alice, _) = try await Self.world()
        let aliceAddress = await alice.address.description
        let created = try await Self.result(daemon, "updateGroup", ["name": "Solo"])
        let groupId = try #require(created["groupId"]?.stringValue)
        #expect(created["results"] == [])
        let before = try await Self.result(daemon, "listGroups")
        let bot = daemon.served[0]
        let id = try GroupId([UInt8](try #require(Data(base64Encoded: groupId))))
        let epoch = try #require(try bot.store.group(id)?.epoch)

        // An id of no group of this account: signal-cli's error, the id re-encoded from its bytes.
        let unknown = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        for (method, params) in [("send", ["groupId": .string(unknown), "message": "hi"]), ("quitGroup", ["groupId": .string(unknown)]),
                                 ("updateGroup", ["groupId": .string(unknown), "name": "x"])] as [(String, JSONValue)] {
            let failure = try await Self.error(daemon, method, params)
            #expect(failure.code == -1 && failure.message == "Failed to send to group: Group not found: \(unknown)", "\(method): \(failure)")
        }
        // Text that is no id is never echoed back.
        for method in ["send", "quitGroup", "updateGroup"] {
            let params: JSONValue = method == "send" ? ["groupId": "\u{1B}[2J", "message": "hi"] : ["groupId": "\u{1B}[2J"]
            let failure = try await Self.error(daemon, method, params)
            #expect(failure.code == -1 && failure.message == "Invalid group id: not base64", "\(method): \(failure)")
        }

        // What Parley's groups do not have: -32000 naming the parameter, before anything is done.
        let refusedChanges: [JSONValue] = [
            ["groupId": .string(groupId), "name": "Renamed", "avatar": "/tmp/a.png"],
            ["groupId": .string(groupId), "description": "about us"],
            ["groupId": .string(groupId), "member": .string(aliceAddress), "admin": .string(aliceAddress)],
            ["groupId": .string(groupId), "ban": .string(aliceAddress)],
            ["groupId": .string(groupId), "link": "enabled"],
            ["groupId": .string(groupId), "resetLink": true],
            ["groupId": .string(groupId), "setPermissionAddMember": "only-admins"],
            ["groupId": .string(groupId), "expiration": 3600],
            ["name": "Another", "member": .string(aliceAddress), "description": "created with a description"],
        ]
        for params in refusedChanges {
            let failure = try await Self.error(daemon, "updateGroup", params)
            #expect(failure.code == -32000 && failure.message.hasPrefix("updateGroup with "), "\(params.serialized): \(failure)")
        }
        let leaveAndDelete = try await Self.error(daemon, "quitGroup", ["groupId": .string(groupId), "delete": true])
        #expect(leaveAndDelete.code == -32000, "\(leaveAndDelete)")

        // Contradictory or empty requests: -32602; a member who is not in the group: -1.
        for (method, params) in [
            ("send", ["groupId": .string(groupId), "recipient": .string(aliceAddress), "message": "both"]),
            ("send", ["groupId": [.string(groupId), .string(unknown)], "message": "two groups"]),
            ("send", ["message": "nobody"]),
            ("updateGroup", ["groupId": .string(groupId)]),
            ("updateGroup", ["groupId": .string(groupId), "name": "\u{1B}\u{7}"]),
            ("updateGroup", ["member": .string(aliceAddress)]),
        ] as [(String, JSONValue)] {
            let failure = try await Self.error(daemon, method, params)
            #expect(failure.code == -32602, "\(method) \(params.serialized): \(failure)")
        }
        let attachments = try await Self.error(daemon, "send", ["groupId": .string(groupId), "message": "files",
                                                                "attachment": ["data:,a", "data:,b"]])
        #expect(attachments.code == -32602, "one file per message: \(attachments)")
        let notIn = try await Self.error(daemon, "updateGroup", ["groupId": .string(groupId), "removeMember": .string(aliceAddress)])
        #expect(notIn.code == -1 && notIn.message.hasSuffix("is not in the group"), "\(notIn)")

        // Nothing changed: the same groups, the same epoch, nobody added.
        #expect(try await Self.result(daemon, "listGroups") == before)
        #expect(try bot.store.group(id)?.epoch == epoch)
        try await alice.engine.receivePending()
        #expect(try alice.store.groups().isEmpty)
    }
}

private extension JSONValue {
    subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
