import Testing
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// A group's record keeps the GroupInfo key beside the MLS state (record version 2, PROTOCOL.md §17.9); a
/// record saved before (version 1) still opens, without a key.
@Suite struct GroupRecordVersionTests {
    let directory = try! TemporaryDirectory("group-record-version")
    let groupId = GroupId.random()
    let members = [DeviceAddress(address: "alice@relay.test", deviceId: 1), DeviceAddress(address: "bob@relay.test", deviceId: 2)]

    /// A version-1 record as the store wrote it before there were GroupInfo keys.
    func versionOne(state: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.u8(1)
        w.raw(groupId.bytes)
        w.bytes16(Array("Climbing club".utf8))
        w.u64(9)
        w.bool(true)
        w.u16(UInt16(members.count))
        for member in members {
            w.bytes16(Array(member.address.utf8))
            w.u32(member.deviceId)
        }
        w.bytes32(state)
        return w.bytes
    }

    @Test func aVersionOneRecordOpensWithoutAKey() throws {
        let record = try GroupRecord(serialized: versionOne(state: [1, 2, 3]))
        #expect(record.id == groupId && record.name == "Climbing club" && record.epoch == 9 && record.active)
        #expect(record.members == members && record.state == [1, 2, 3])
        #expect(record.infoKey == nil)
        // Saved again, it is a version-2 record (still without a key).
        #expect(record.serialized().first == 2)
        #expect(try GroupRecord(serialized: record.serialized()) == record)
    }

    @Test func theKeyIsKeptBesideTheStateAndReadBack() throws {
        let key = GroupInfoKey(epoch: 4, key: SecretBytes.random(count: 32))
        let record = GroupRecord(id: groupId, name: "Climbing club", members: members, epoch: 9, state: [7, 7], infoKey: key)
        let path = directory.sub("parley.db")
        try makeStore(path).saveGroup(record)
        let read = try #require(try openStore(path).group(groupId))
        #expect(read == record && read.infoKey == key)
        // A state that no longer opens leaves the key readable: it is not inside the state.
        var broken = read
        broken.state = [UInt8](repeating: 0xEE, count: 40)
        try openStore(path).saveGroup(broken)
        #expect(try openStore(path).group(groupId)?.infoKey == key)
    }

    @Test func anUnknownVersionOrKeyFlagIsRefused() throws {
        var three = versionOne(state: [1])
        three[0] = 3
        #expect(throws: StoreError.self) { try GroupRecord(serialized: three) }
        var badFlag = versionOne(state: [1])
        badFlag[0] = 2
        #expect(throws: StoreError.self) { try GroupRecord(serialized: badFlag + [2]) }
        #expect(throws: StoreError.self) { try GroupRecord(serialized: badFlag + [1, 0, 0]) }   // a key cut short
        #expect(throws: StoreError.self) { try GroupRecord(serialized: badFlag) }              // no flag at all
    }
}
