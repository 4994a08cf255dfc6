import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// The never-dropped delivery of messages, against a real encrypted store (no relay needed: the messages
/// are filed into history the way the engine files them).
@Suite("Headless: durable cursor and replay")
struct NotificationHubTests {
    let directory: TemporaryDirectory
    let store: EncryptedStore
    static let account = "bot@127.0.0.1:1"

    init() throws {
        directory = try TemporaryDirectory()
        try KeyFile.create(at: directory.path + "/key")
        store = try EncryptedStore.create(at: directory.path + "/parley.db", unlock: [.keyFile(path: directory.path + "/key")])
    }

    func incoming(_ text: String, from sender: String = "alice@127.0.0.1:1") -> MessageRecord {
        MessageRecord(conversation: try! ConversationId(destination: sender), direction: .incoming, sender: DeviceAddress(address: sender, deviceId: 1),
                      clientMessageId: (0..<16).map { _ in UInt8.random(in: 0...255) }, sentAt: 1_000, receivedAt: 2_000,
                      text: text, state: .received)
    }

    func texts(_ pair: SocketPair, count: Int) async throws -> [String] {
        var out: [String] = []
        for _ in 0..<count {
            let line = try await pair.readJSON()
            #expect(line["method"] == "receive")
            out.append(try #require(line["params"]?["envelope"]?["dataMessage"]?["message"]?.stringValue))
        }
        return out
    }

    @Test("messages stored before subscribe are replayed in order; outgoing and system records are skipped")
    func replay() async throws {
        try store.insertMessages([incoming("one"), incoming("two")])
        try store.insertMessages([MessageRecord(conversation: try ConversationId(destination: "alice@127.0.0.1:1"), direction: .outgoing,
                                                sender: DeviceAddress(address: Self.account, deviceId: 1), clientMessageId: [1, 2],
                                                sentAt: 1, receivedAt: 1, text: "mine", state: .sent)])
        try store.insertMessages([incoming("three")])
        let hub = NotificationHub(store: store, account: try AccountAddress(Self.account))
        let pair = try SocketPair()
        let id = try await hub.subscribe(pair.server, cursorName: "default")
        await hub.release(pair.server)
        #expect(try await texts(pair, count: 3) == ["one", "two", "three"])
        // Live: a message filed later is delivered when the engine reports it.
        try store.insertMessages([incoming("four")])
        await hub.handle(.message(incoming("ignored: the hub reads the store")))
        let fourth = try await pair.readJSON()
        #expect(fourth["params"]?["envelope"]?["dataMessage"]?["message"] == "four")
        #expect(fourth["params"]?["subscription"] == .int(Int64(id)))
        #expect(fourth["params"]?["account"] == .string(Self.account))
    }

    @Test("what arrives while unsubscribed, and across a new hub (a daemon restart), comes exactly once")
    func durableCursor() async throws {
        try store.insertMessages([incoming("before")])
        let first = NotificationHub(store: store, account: try AccountAddress(Self.account))
        let pair = try SocketPair()
        _ = try await first.subscribe(pair.server, cursorName: "default")
        await first.release(pair.server)
        #expect(try await texts(pair, count: 1) == ["before"])
        // The cursor is saved once the page was written.
        try await waitFor { try await first.cursor(named: "default") > 0 }
        #expect(await first.unsubscribe(pair.server) == 1)
        try store.insertMessages([incoming("while unsubscribed")])
        await first.handle(.message(incoming("x")))

        // The daemon "restarts": a new hub over the same store.
        let second = NotificationHub(store: store, account: try AccountAddress(Self.account))
        try store.insertMessages([incoming("while down")])
        let again = try SocketPair()
        _ = try await second.subscribe(again.server, cursorName: "default")
        await second.release(again.server)
        #expect(try await texts(again, count: 2) == ["while unsubscribed", "while down"])
        // Another cursor name starts from the beginning: each bot keeps its own place.
        let other = try SocketPair()
        _ = try await second.subscribe(other.server, cursorName: "other-bot")
        await second.release(other.server)
        #expect(try await texts(other, count: 3) == ["before", "while unsubscribed", "while down"])
    }

    @Test("receipts and typing go to current subscribers only")
    func ephemeral() async throws {
        let hub = NotificationHub(store: store, account: try AccountAddress(Self.account))
        let pair = try SocketPair()
        _ = try await hub.subscribe(pair.server, cursorName: "default")
        await hub.release(pair.server)
        let alice = try ConversationId(destination: "alice@127.0.0.1:1")
        await hub.handle(.typing(in: alice, from: try AccountAddress("alice@127.0.0.1:1"), started: true))
        await hub.handle(.receipt(in: alice, from: try AccountAddress("alice@127.0.0.1:1"), read: true, messageIds: [[UInt8](repeating: 7, count: 16)]))
        let typing = try await pair.readJSON()
        #expect(typing["params"]?["envelope"]?["typingMessage"]?["action"] == "STARTED")
        let receipt = try await pair.readJSON()
        #expect(receipt["params"]?["envelope"]?["receiptMessage"]?["type"] == "READ")
        #expect(receipt["params"]?["envelope"]?["receiptMessage"]?["messageIds"] == [.string(String(repeating: "07", count: 16))])
    }

    @Test("a subscriber that went away stops its pump without advancing the cursor past what it was sent")
    func closedSubscriber() async throws {
        let hub = NotificationHub(store: store, account: try AccountAddress(Self.account))
        let pair = try SocketPair()
        pair.closeClient()
        pair.server.close()
        _ = try await hub.subscribe(pair.server, cursorName: "default")
        await hub.release(pair.server)
        try store.insertMessages([incoming("nobody reads this")])
        await hub.handle(.message(incoming("x")))
        try await waitFor { await hub.subscriberCount == 0 }
        #expect(try await hub.cursor(named: "default") == 0)
    }
}

/// Polls until `condition` holds (bounded: a hung test fails instead of waiting forever).
func waitFor(_ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestError("condition not reached") }
        try await Task.sleep(for: .milliseconds(10))
    }
}
