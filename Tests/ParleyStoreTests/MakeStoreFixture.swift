import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore

// Writes Tests/vectors/store-v1/ (bob.db and contents.json) when PARLEY_MAKE_STORE_FIXTURE names a directory.
// Run once on the code that wrote stores of schema v1; see Tests/vectors/store-v1/README.md.
@Test func makeStoreFixture() async throws {
    guard let out = ProcessInfo.processInfo.environment["PARLEY_MAKE_STORE_FIXTURE"] else { return }
    let world = StoreWorld()
    let alice = try world.device("alice@relay.test"), bob = try world.device("bob@relay.test")
    try world.introduce(alice, bob)
    // Alice verified, with a display name; Carol a second contact.
    var aliceContact = try #require(try bob.store.contact("alice@relay.test"))
    aliceContact.trust = .verified
    aliceContact.displayName = "Alice"
    try bob.store.saveContact(aliceContact)
    let carol = makeAccount("carol@relay.test")
    try bob.store.saveContact(Contact(address: "carol@relay.test", account: known(carol), displayName: "Carol"))

    // Alice's two messages, filed into Bob's history through real sessions; the first one read.
    for (n, text) in ["hello bob", "are you there?"].enumerated() {
        let received = try await exchange(text, from: alice, to: bob, id: UInt8(n + 1))
        let entry = try #require(try bob.store.inbox().last)
        try bob.store.file(inboxEntry: entry.id, as: try record(of: received))
    }
    try bob.store.advanceState(ofMessagesSentBy: "alice@relay.test", ids: [[UInt8](repeating: 1, count: 16)], to: .seen)
    // A third one left in the inbox, not yet filed.
    try await exchange("still in the inbox", from: alice, to: bob, id: 3)
    // Bob's reply, quoting her first message: encrypted into the outbox with its history record (pending).
    let reply = Content(messageId: [UInt8](repeating: 0x21, count: 16), sentAt: FixedClock().now + 10, destination: "alice@relay.test",
                        body: .message(text: "yes, here", replyTo: [UInt8](repeating: 1, count: 16), attachment: nil))
    let sent = try await bob.manager.send(reply.encoded, to: "alice@relay.test")
    #expect(!sent.isEmpty)
    try bob.store.commit(SessionChanges(), recording: MessageRecord(
        conversation: "alice@relay.test", direction: .outgoing, sender: bob.address, clientMessageId: reply.messageId,
        sentAt: reply.sentAt, receivedAt: reply.sentAt, text: "yes, here", state: .pending, replyTo: [UInt8](repeating: 1, count: 16)))

    // Carol: an outgoing message with an attachment (delivered), then two incoming ones, unread, and a notice.
    let photo = AttachmentPointer(id: String(repeating: "ab", count: 16), key: [UInt8](repeating: 7, count: 32), size: 5,
                                  digest: [UInt8](repeating: 9, count: 32), fileName: "a.txt", contentType: "text/plain")
    let carolDevice = DeviceAddress(address: "carol@relay.test", deviceId: 1)
    try bob.store.insertMessages([
        MessageRecord(conversation: "carol@relay.test", direction: .outgoing, sender: bob.address, clientMessageId: [UInt8](repeating: 0x31, count: 16),
                      sentAt: 1_800_000_100_000, receivedAt: 1_800_000_100_000, text: "the file", state: .delivered, attachment: photo),
        MessageRecord(conversation: "carol@relay.test", direction: .incoming, sender: carolDevice, clientMessageId: [UInt8](repeating: 0x41, count: 16),
                      sentAt: 1_800_000_200_000, receivedAt: 1_800_000_200_500, text: "got it", state: .received),
        MessageRecord(conversation: "carol@relay.test", direction: .system, sender: DeviceAddress(address: "carol@relay.test", deviceId: 0),
                      clientMessageId: [UInt8](repeating: 0x42, count: 15) + [0xEE], sentAt: 1_800_000_250_000, receivedAt: 1_800_000_250_000,
                      text: "carol@relay.test added a device", state: .received),
        MessageRecord(conversation: "carol@relay.test", direction: .incoming, sender: carolDevice, clientMessageId: [UInt8](repeating: 0x43, count: 16),
                      sentAt: 1_800_000_300_000, receivedAt: 1_800_000_300_500, text: "thanks! 👍", state: .received),
    ])
    try bob.store.setDeviceName("desk", for: 1)
    try bob.store.checkpoint()

    // What the code of schema v1 reads from it: the upgrade test expects exactly this after migrating.
    func hex(_ bytes: [UInt8]?) -> Any { bytes.map(Hex.encode) ?? NSNull() }
    func messageJSON(_ m: MessageRecord) -> [String: Any] {
        ["id": m.id, "conversation": m.conversation, "direction": Int(m.direction.rawValue), "sender": m.sender.address,
         "senderDevice": m.sender.deviceId, "clientMessageId": Hex.encode(m.clientMessageId), "sentAt": m.sentAt,
         "receivedAt": m.receivedAt, "text": m.text, "state": Int(m.state.rawValue), "replyTo": hex(m.replyTo),
         "attachment": m.attachment.map { $0.encodedForFixture } ?? NSNull()]
    }
    var contents: [String: Any] = [:]
    contents["conversations"] = try bob.store.conversations()
    contents["messages"] = try bob.store.conversations().flatMap { try bob.store.messages(with: $0).map(messageJSON) }
    contents["contacts"] = try bob.store.contacts().map {
        ["address": $0.address, "account": Hex.encode($0.account.serialized()), "trust": Int($0.trust.rawValue), "displayName": $0.displayName]
    }
    contents["unreadCounts"] = try bob.store.unreadCounts()
    contents["sessions"] = ["alice@relay.test/1": Hex.encode(try bob.store.sessions(for: alice.address).serialized())]
    contents["localAccount"] = Hex.encode(try #require(try bob.store.localAccount()).serialized())
    contents["preKeys"] = Hex.encode(try bob.store.preKeys().serialized())
    contents["inbox"] = try bob.store.inbox().map { Hex.encode($0.message.content) }
    contents["outbox"] = try bob.store.outboxEntries().map { ["recipient": $0.envelope.recipient.address, "recipientDevice": $0.envelope.recipient.deviceId,
                                                              "envelope": Hex.encode($0.envelope.envelope), "content": Hex.encode($0.content)] }
    contents["deviceNames"] = try bob.store.deviceNames().map { ["\($0.key)": $0.value] }
    let json = try JSONSerialization.data(withJSONObject: contents, options: [.prettyPrinted, .sortedKeys])
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try json.write(to: URL(fileURLWithPath: out + "/contents.json"))
    try FileManager.default.copyItem(atPath: bob.store.path, toPath: out + "/bob.db")
}

extension AttachmentPointer {
    var encodedForFixture: String {
        var w = ByteWriter()
        encode(into: &w)
        return Hex.encode(w.bytes)
    }
}
