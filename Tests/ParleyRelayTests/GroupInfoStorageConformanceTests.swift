import Foundation
import ParleyProtocol
@testable import ParleyRelay
import Testing

/// The GroupInfo a commit leaves for rejoining members (PROTOCOL.md §17.9), on SQLite and PostgreSQL alike:
/// stored with the commit that started the epoch, replaced by the next, gone with a commit that leaves
/// none, untouched by a commit that lost the epoch.
@Suite("Group storage conformance: GroupInfo (SQLite and PostgreSQL)")
struct GroupInfoStorageConformanceTests {
    static let alice = "alice@relay.test"
    let one = DeviceAddress(address: alice, deviceId: 1)
    let groupId = [UInt8](repeating: 9, count: 32)

    private func commit(_ epoch: UInt64, info: [UInt8]?, rejoiners: [UInt8]? = [0x52]) -> GroupMessageWrite {
        GroupMessageWrite(groupId: groupId, epoch: epoch, nextVerifier: [UInt8(epoch + 1)], message: [0xCC], recipients: [one],
                          deviceLists: [Self.alice: [10]], now: 1, expiresAt: 1000, mailboxLimit: 100,
                          groupInfo: info, rejoiners: info == nil ? nil : rejoiners)
    }

    @Test("kept with the commit, for the epoch it started; replaced, refused with a lost commit, dropped by a commit without",
          arguments: StorageKind.allCases)
    func groupInfoFollowsTheCommits(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await storage.createGroup(groupId, verifier: [0]))
            #expect(try await storage.groupInfo(groupId) == nil, "a new group has none")
            #expect(try await storage.storeGroupMessage(commit(0, info: [0xA1])) == .stored)
            #expect(try await storage.groupInfo(groupId) == StoredGroupInfo(epoch: 1, groupInfo: [0xA1], rejoiners: [0x52]))
            #expect(try await storage.storeGroupMessage(commit(0, info: [0xA2])) == .epochIs(1))
            #expect(try await storage.groupInfo(groupId)?.groupInfo == [0xA1], "the commit that lost the epoch left nothing")
            let big = [UInt8](repeating: 0x47, count: 300_000)
            #expect(try await storage.storeGroupMessage(commit(1, info: big, rejoiners: [1, 2, 3])) == .stored)
            #expect(try await storage.groupInfo(groupId) == StoredGroupInfo(epoch: 2, groupInfo: big, rejoiners: [1, 2, 3]))
            #expect(try await storage.storeGroupMessage(commit(2, info: nil)) == .stored)
            #expect(try await storage.groupInfo(groupId) == nil, "a commit without a GroupInfo leaves the group with none")
            #expect(try await storage.group(groupId)?.epoch == 3)
            #expect(try await storage.groupInfo([1, 2]) == nil)
        }
    }
}
