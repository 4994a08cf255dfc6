import Testing
import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// Cheap Argon2id limits so tests stay fast; production uses `.moderate`.
let testParameters = Argon2id.Parameters(opsLimit: 1, memLimitBytes: 8 << 20)
let passphrase = SecretBytes(Array("correct horse battery staple".utf8))

func message(_ text: String, _ n: Int, peer: String = "bob@relay.test") -> MessageRecord {
    MessageRecord(conversation: direct(peer), direction: .incoming, sender: DeviceAddress(address: peer, deviceId: 1),
                  clientMessageId: Array(withUnsafeBytes(of: UInt64(n).bigEndian) { Array($0) }) + [UInt8](repeating: 0, count: 8),
                  sentAt: 1_800_000_000_000 + UInt64(n), receivedAt: 1_800_000_000_000 + UInt64(n), text: text, state: .received)
}

@Test func createUnlockAndReadBack() throws {
    let dir = try! TemporaryDirectory("store")
    let path = dir.sub("parley.db")
    do {
        let store = try EncryptedStore.create(at: path, unlock: [.passphrase(passphrase)], parameters: testParameters)
        let ids = try store.insertMessages([message("hello there", 1), message("second", 2), message("hello there", 1)])
        #expect(ids[0] != nil && ids[1] != nil && ids[2] == nil)
    }
    #expect(throws: StoreError.wrongPassphrase) {
        try EncryptedStore.open(at: path, unlock: .passphrase(SecretBytes(Array("wrong".utf8))))
    }
    let store = try EncryptedStore.open(at: path, unlock: .passphrase(passphrase))
    #expect(try store.messages(with: "bob@relay.test").map(\.text) == ["hello there", "second"])
    #expect(try store.search("HELLO").count == 1)
    #expect(try store.verify().rows["messages"] == 2)
}
