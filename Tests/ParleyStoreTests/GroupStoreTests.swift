import Testing
import Foundation
import GRDB
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// Groups in the store (schema v4): a group's MLS state sealed like a session, saved in the same
/// transaction as the messages it decrypted; this device's KeyPackage keys; a v1 store upgraded to hold them.
@Suite struct GroupStoreTests {
    let directory = try! TemporaryDirectory("group-store")
    let groupId = GroupId.random()
    let state = Array("every secret of epoch 3".utf8) + SystemRandom().bytes(64)

    func record(epoch: UInt64 = 3, name: String = "Climbing club", state: [UInt8]? = nil) -> GroupRecord {
        GroupRecord(id: groupId, name: name, members: [DeviceAddress(address: "alice@relay.test", deviceId: 1),
                                                       DeviceAddress(address: "bob@relay.test", deviceId: 1),
                                                       DeviceAddress(address: "bob@relay.test", deviceId: 2)],
                    epoch: epoch, state: state ?? self.state, infoKey: nil)
    }

    func groupMessage(_ text: String, _ n: UInt8) -> MessageRecord {
        MessageRecord(conversation: .group(groupId), direction: .incoming, sender: DeviceAddress(address: "bob@relay.test", deviceId: 2),
                      clientMessageId: [UInt8](repeating: n, count: 16), sentAt: 1_800_000_000_000, receivedAt: 1_800_000_000_001,
                      text: text, state: .received)
    }

    @Test func aGroupAndItsMessagesAreSavedTogetherAndReadBack() throws {
        let path = directory.sub("parley.db")
        let store = try makeStore(path)
        let ids = try store.saveGroup(record(), filing: [groupMessage("hi all", 1), groupMessage("hi all", 1)])
        #expect(ids.count == 2 && ids[0] != nil && ids[1] == nil, "a repeat is dropped as in a direct conversation")
        #expect(try store.group(groupId) == record())
        #expect(try store.groups().map(\.id) == [groupId])
        #expect(try store.conversations() == [.group(groupId)])
        #expect(try store.messages(in: .group(groupId)).map(\.text) == ["hi all"])
        #expect(record().accounts == ["alice@relay.test", "bob@relay.test"])
        // Reopened, the same.
        let again = try openStore(path)
        #expect(try again.group(groupId) == record())
        #expect(try again.verify().rows["groups"] == 1)
    }

    @Test func theStateNeverMovesWithoutTheMessagesItDecrypted() throws {
        let path = directory.sub("parley.db")
        let store = try makeStore(path)
        try store.saveGroup(record(epoch: 3))
        // The messages table refuses the next insert: the transaction fails as a full disk would fail it.
        try raw(path) { db in
            try db.execute(sql: "CREATE TRIGGER refuse BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'refused'); END")
        }
        #expect(throws: StoreError.self) {
            try store.saveGroup(record(epoch: 4, state: [4, 4, 4]), filing: [groupMessage("lost?", 2)])
        }
        #expect(try store.group(groupId)?.epoch == 3, "the state stays at the epoch whose messages are stored")
        #expect(try store.group(groupId)?.state == state)
        #expect(try store.messages(in: .group(groupId)).isEmpty)
    }

    @Test func nothingOfAGroupIsInTheClear() throws {
        let path = directory.sub("parley.db")
        let store = try makeStore(path)
        try store.saveGroup(record(), filing: [groupMessage("meet at the wall", 1)])
        try store.checkpoint()
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        for secret in [Array("Climbing club".utf8), state, groupId.bytes, Array(groupId.hex.utf8), Array("meet at the wall".utf8)] {
            #expect(file.range(of: Data(secret)) == nil)
        }
        // A record copied under another group's key is refused, not read as that group.
        let other = GroupId.random()
        try raw(path) { db in
            try db.execute(sql: "UPDATE groups SET lookup = ?", arguments: [Data(store.testLookup(other.bytes, "groups"))])
        }
        #expect(throws: StoreError.self) { try store.group(other) }
    }

    @Test func aWelcomeUsesUpAKeyPackageButNotTheLastResortOne() throws {
        let store = try makeStore(directory.sub("parley.db"))
        let one = KeyPackageKeys(reference: [1], keyPackage: [0xA1], initPrivateKey: [0x11], encryptionPrivateKey: [0x21], lastResort: false)
        let last = KeyPackageKeys(reference: [9], keyPackage: [0xA9], initPrivateKey: [0x19], encryptionPrivateKey: [0x29], lastResort: true)
        try store.saveKeyPackageKeys([one, last])
        #expect(try store.keyPackageKeys(reference: [1]) == one)
        try store.saveGroup(record(), usedKeyPackage: [1])
        #expect(try store.keyPackageKeys(reference: [1]) == nil)
        try store.saveGroup(record(), usedKeyPackage: [9])
        #expect(try store.keyPackageKeys(reference: [9]) == last, "the relay hands the last-resort package out again")
        // A new last-resort package replaces the old one.
        let newLast = KeyPackageKeys(reference: [8], keyPackage: [0xA8], initPrivateKey: [0x18], encryptionPrivateKey: [0x28], lastResort: true)
        try store.saveKeyPackageKeys([newLast])
        #expect(try store.keyPackageKeys() == [newLast])
    }

    @Test func aStoreFromSchemaV1OpensAndHoldsGroups() throws {
        let path = directory.sub("bob.db")
        try FileManager.default.copyItem(atPath: StoreUpgradeTests.fixture.appendingPathComponent("bob.db").path, toPath: path)
        let store = try openStore(path)
        let before = try store.conversations()
        try store.saveGroup(record(), filing: [groupMessage("first in a group", 1)])
        #expect(try store.conversations() == [.group(groupId)] + before)
        let again = try openStore(path)
        #expect(try again.group(groupId)?.name == "Climbing club")
        #expect(try again.messages(in: .group(groupId)).map(\.text) == ["first in a group"])
        #expect(try raw(path) { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }.contains("v4"))
    }
}

extension EncryptedStore {
    func testLookup(_ bytes: [UInt8], _ table: String) -> [UInt8] { cipher.lookup(bytes, table: table) }
}

@Test func groupConversationIdsRoundTripAndNeverReadAsAnAddress() throws {
    let id = GroupId.random()
    let group = ConversationId.group(id)
    #expect(try ConversationId(decoding: group.encoded) == group)
    #expect(group.encoded.first == 2)
    #expect(try ConversationId(destination: group.destination) == group)
    #expect(group.description == "group:" + id.hex && group.peer == nil)
    #expect(throws: ProtocolError.self) { try ConversationId(destination: "group:abcd") }
    #expect(throws: ProtocolError.self) { try ConversationId(decoding: [2, 0, 3, 1, 2, 3]) }
}
