import Testing
import Foundation
import GRDB
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// A store written by schema v1 (Tests/vectors/store-v1, see its README) opened by this code: it migrates,
/// and everything the v1 code read from it is still there.
@Suite struct StoreUpgradeTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../vectors/store-v1").standardized
    let directory = try! TemporaryDirectory("store")

    /// A copy of the fixture store (the committed file is never opened for writing).
    func copy() throws -> String {
        let path = directory.sub("bob.db")
        try FileManager.default.copyItem(atPath: Self.fixture.appendingPathComponent("bob.db").path, toPath: path)
        return path
    }

    func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: Self.fixture.appendingPathComponent("contents.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func schemaMigrations(_ path: String) throws -> [String] {
        try raw(path) { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
    }

    @Test func everyMessageContactUnreadCountAndSessionSurvivesTheUpgrade() throws {
        let path = try copy()
        #expect(try schemaMigrations(path) == ["v1"])
        let want = try expected()
        let store = try openStore(path)
        #expect(try schemaMigrations(path) == ["v1", "v2", "v3", "v4", "v5"])

        let conversations = try #require(want["conversations"] as? [String])
        #expect(try store.conversations() == conversations.map(direct))
        var messages: [[String: Any]] = []
        for conversation in try store.conversations() {
            messages += try store.messages(in: conversation).map { m in
                ["id": m.id, "conversation": m.conversation.description, "direction": Int(m.direction.rawValue), "sender": m.sender.address,
                 "senderDevice": Int(m.sender.deviceId), "clientMessageId": Hex.encode(m.clientMessageId), "sentAt": Int(m.sentAt),
                 "receivedAt": Int(m.receivedAt), "text": m.text, "state": Int(m.state.rawValue), "replyTo": m.replyTo.map(Hex.encode) ?? NSNull(),
                 "attachment": m.attachment.map { pointer in
                     var w = ByteWriter()
                     pointer.encode(into: &w)
                     return Hex.encode(w.bytes)
                 } ?? NSNull()]
            }
        }
        let wantMessages = try #require(want["messages"] as? [[String: Any]])
        #expect(messages.count == 7)
        #expect(NSArray(array: messages).isEqual(to: wantMessages))

        let contacts = try store.contacts().map {
            ["address": $0.address.description, "account": Hex.encode($0.account.serialized()), "trust": Int($0.trust.rawValue), "displayName": $0.displayName] as [String: Any]
        }
        #expect(contacts.count == 2)
        #expect(NSArray(array: contacts).isEqual(to: try #require(want["contacts"] as? [[String: Any]])))
        // v3: every contact re-sealed as a person, without a nickname and not blocked.
        #expect(try store.contacts().allSatisfy { $0.nickname.isEmpty && !$0.blocked })

        let unread = try #require(want["unreadCounts"] as? [String: Int])
        #expect(unread == ["carol@relay.test": 2])
        #expect(try store.unreadCounts() == Dictionary(uniqueKeysWithValues: unread.map { (direct($0.key), $0.value) }))

        let session = try store.sessions(for: DeviceAddress(address: "alice@relay.test", deviceId: 1))
        #expect(session.active != nil)
        #expect(Hex.encode(session.serialized()) == (want["sessions"] as? [String: String])?["alice@relay.test/1"])
        #expect(Hex.encode(try #require(try store.localAccount()).serialized()) == want["localAccount"] as? String)
        #expect(Hex.encode(try store.preKeys().serialized()) == want["preKeys"] as? String)
        #expect(try store.inbox().map { Hex.encode($0.message.content) } == want["inbox"] as? [String])
        #expect(try store.outboxEntries().map { Hex.encode($0.content) } == (want["outbox"] as? [[String: Any]])?.compactMap { $0["content"] as? String })
        #expect(try store.deviceNames() == [1: "desk"])
        #expect(try store.verify().rows["messages"] == 7)

        // The upgraded store goes on: a message in an existing conversation joins it, a new one starts another.
        try store.insertMessages([message("after the upgrade", 99, peer: "alice@relay.test"), message("new", 100, peer: "dave@relay.test")])
        #expect(try store.messages(in: direct("alice@relay.test")).last?.text == "after the upgrade")
        #expect(try store.conversations() == [direct("dave@relay.test"), direct("alice@relay.test"), direct("carol@relay.test")])
        // A nickname and a block written after the upgrade stay (record version 2).
        var alice = try #require(try store.contact("alice@relay.test"))
        alice.nickname = "Al"
        alice.blocked = true
        try store.saveContact(alice)
        // And it opens again without migrating anything.
        let again = try openStore(path)
        #expect(try again.conversations().count == 3)
        #expect(try again.contact("alice@relay.test").map { ($0.nickname, $0.blocked) } ?? ("", false) == ("Al", true))
        #expect(try schemaMigrations(path) == ["v1", "v2", "v3", "v4", "v5"])
    }

    /// A migration that fails (here: a conversations row that does not authenticate, so v2 cannot read the
    /// address it must re-key) is rolled back: the file keeps every byte v1 wrote, and the error says so.
    @Test func aFailedUpgradeLeavesTheStoreAsItWasAndSaysSo() throws {
        let path = try copy()
        try raw(path) { db in try db.execute(sql: "UPDATE conversations SET body = zeroblob(length(body)) WHERE id = 1") }
        // Everything in the main file, so that its bytes are the whole store.
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        try queue.close()
        #expect(!fileExists(path + "-wal") || fileBytes(path + "-wal").isEmpty)
        let before = fileBytes(path)
        let dumpBefore = try dump(path)
        do {
            _ = try openStore(path)
            Issue.record("the upgrade should have failed")
        } catch let error as StoreError {
            guard case .upgradeFailed(let failedPath, 1, 5, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(failedPath == path)
            #expect(error.description.contains("from schema version 1 to 5"))
            #expect(error.description.contains("it was left unchanged"))
            #expect(error.description.contains("conversations.body of row 1 fails authentication"))
        }
        #expect(fileBytes(path) == before)
        #expect(!fileExists(path + "-wal") || fileBytes(path + "-wal").isEmpty)
        #expect(try dump(path) == dumpBefore)
        #expect(try schemaMigrations(path) == ["v1"])
    }

    /// The v2 conversation key: a direct conversation's id and its encoding round-trip, and the store keys
    /// it by that encoding, never by the bare address (so a group id can never collide with an address).
    @Test func conversationIdsRoundTrip() throws {
        let bob = direct("bob@relay.test:8443")
        #expect(try ConversationId(decoding: bob.encoded) == bob)
        #expect(bob.encoded.first == 1)
        #expect(throws: ProtocolError.self) { try ConversationId(decoding: [2, 0, 1, 0x41]) }
        #expect(throws: ProtocolError.self) { try ConversationId(destination: "Not An Address") }
    }
}
