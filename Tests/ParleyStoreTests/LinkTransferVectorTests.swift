import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

// PROTOCOL.md §10 and §15.2: the plaintext of a link transfer, exported from a real store holding one contact,
// two messages and two device names, all fixed. Tests/vectors/link-transfer-v1.json holds it;
// Tests/interop/test_vectors.py recomputes it from the document. PARLEY_WRITE_VECTORS=1 rewrites the file
// (and the test then fails, so a rewrite is always a deliberate, reviewed change).

private let transferVectorFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../vectors/link-transfer-v1.json").standardized

private func named(_ name: String) -> [UInt8] { SHA256.hash(Array(name.utf8)) }
private func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

/// Bob's store as §10 describes it: Alice as a verified contact, her first message and his reply (quoting it,
/// with an attachment), and the names of his devices 7 and 8.
private func exportedTransfer(in directory: TemporaryDirectory) throws -> [UInt8] {
    let store = try makeStore(directory.sub("bob.db"))
    let aliceAccount = try Ed25519.KeyPair(seed: SecretBytes(named("alice account seed")))
    let aliceDevice = try Ed25519.KeyPair(seed: SecretBytes(named("alice identity seed")))
    let aliceList = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: aliceDevice.publicKey, createdAt: 1_767_225_600_000)],
                                          version: 1, accountKey: aliceAccount)
    try store.saveContact(Contact(address: "alice@example.org", account: KnownAccount(accountKey: aliceAccount.publicKey, deviceList: aliceList),
                                  trust: .verified, displayName: "Alice"))
    let photo = AttachmentPointer(id: hexString(named("photo id")), key: named("photo key"), size: 5, digest: named("photo blob"),
                                  fileName: "a.txt", contentType: "text/plain")
    try store.insertMessages([
        MessageRecord(conversation: "alice@example.org", direction: .incoming, sender: DeviceAddress(address: "alice@example.org", deviceId: 1),
                      clientMessageId: [UInt8](repeating: 0x11, count: 16), sentAt: 1_767_225_600_000, receivedAt: 1_767_225_601_000,
                      text: "Hello Bob, this is Parley.", state: .seen),
        MessageRecord(conversation: "alice@example.org", direction: .outgoing, sender: DeviceAddress(address: "bob@example.org", deviceId: 7),
                      clientMessageId: [UInt8](repeating: 0x22, count: 16), sentAt: 1_767_225_660_000, receivedAt: 1_767_225_660_000,
                      text: "Hi Alice.", state: .read, replyTo: [UInt8](repeating: 0x11, count: 16), attachment: photo),
    ])
    try store.setDeviceName("desk", for: 7)
    try store.setDeviceName("laptop", for: 8)
    return try LinkTransfer.export(store, historyPerConversation: 10).bytes
}

@Test func linkTransferVectorMatchesTheCommittedFile() throws {
    let transfer = try exportedTransfer(in: try! TemporaryDirectory("store"))
    if ProcessInfo.processInfo.environment["PARLEY_WRITE_VECTORS"] == "1" {
        let data = try JSONSerialization.data(withJSONObject: ["link_transfer": hexString(transfer)], options: [.prettyPrinted, .sortedKeys])
        try data.write(to: transferVectorFile)
        Issue.record("vectors rewritten to \(transferVectorFile.path); review and commit them, then run again without PARLEY_WRITE_VECTORS")
        return
    }
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: transferVectorFile)) as? [String: String],
                              "missing \(transferVectorFile.path)")
    #expect(Set(stored.keys) == ["link_transfer"])
    #expect(stored["link_transfer"] == hexString(transfer))
}

@Test func storedLinkTransferInstallsIntoAFreshStore() throws {
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: transferVectorFile)) as? [String: String])
    let text = try #require(stored["link_transfer"])
    let bytes = try #require(Hex.decode(text))
    let directory = try! TemporaryDirectory("store")
    let store = try makeStore(directory.sub("bob-8.db"))
    let summary = try LinkTransfer.install(bytes, into: store)
    #expect(summary.contacts == 1 && summary.messages == 2)
    #expect(try store.contact("alice@example.org")?.trust == .verified)
    #expect(try store.deviceNames() == [7: "desk", 8: "laptop"])
    let messages = try store.messages(with: "alice@example.org")
    #expect(messages.map(\.text) == ["Hello Bob, this is Parley.", "Hi Alice."])
    #expect(messages.map(\.state) == [.seen, .read])
    #expect(messages.last?.attachment?.fileName == "a.txt")
    withExtendedLifetime(directory) {}
}
