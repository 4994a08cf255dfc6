import Foundation
import ParleyProtocol
@testable import ParleyRelay
import Testing

/// A commit's Welcome in the storage (PROTOCOL.md §17.2), on SQLite and PostgreSQL alike: stored in the
/// commit's transaction as a message of the next epoch for the devices it adds, or not at all.
@Suite("Group storage: a commit's Welcome (SQLite and PostgreSQL)")
struct GroupWelcomeStorageTests {
    let groupId = [UInt8](repeating: 9, count: 32)
    let member = DeviceAddress(address: "member@relay.test", deviceId: 1)
    let newcomer = DeviceAddress(address: "newcomer@relay.test", deviceId: 1)

    func commit(epoch: UInt64, welcomeTo welcomed: [DeviceAddress], limit: Int = 10) -> GroupMessageWrite {
        var write = GroupMessageWrite(groupId: groupId, epoch: epoch, nextVerifier: [UInt8(epoch + 1)], message: [0xC0, UInt8(epoch)],
                                      recipients: [member], deviceLists: [member.address: [1], newcomer.address: [2]], now: 1,
                                      expiresAt: 1000, mailboxLimit: limit)
        write.welcome = GroupWelcomeWrite(message: [0x3E, UInt8(epoch)], recipients: welcomed)
        return write
    }

    @Test("stored with the commit for the devices it names, a message of the next epoch; refused with it", arguments: StorageKind.allCases)
    func welcomeWithItsCommit(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            _ = try await storage.createAccount(address: member.address, accountKey: [1], deviceList: [1])
            _ = try await storage.createAccount(address: newcomer.address, accountKey: [2], deviceList: [2])
            #expect(try await storage.createGroup(groupId, verifier: [0]))
            #expect(try await storage.storeGroupMessage(commit(epoch: 0, welcomeTo: [newcomer])) == .stored)
            #expect(try await storage.storeGroupMessage(commit(epoch: 0, welcomeTo: [newcomer])) == .epochIs(1), "a second commit for epoch 0")
            // The next commit, by a member that processed the first: the newcomer is now its recipient too.
            var next = GroupMessageWrite(groupId: groupId, epoch: 1, nextVerifier: [2], message: [0xC1], recipients: [member, newcomer],
                                         deviceLists: [member.address: [1], newcomer.address: [2]], now: 1, expiresAt: 1000, mailboxLimit: 10)
            #expect(try await storage.storeGroupMessage(next) == .stored)

            let theirs = try await storage.fetch(for: newcomer, now: 2, limit: 10, after: 0, groups: true).messages.compactMap(\.group)
            #expect(theirs == [StoredGroupMessage(groupId: groupId, epoch: 1, isCommit: false, message: [0x3E, 0]),
                               StoredGroupMessage(groupId: groupId, epoch: 1, isCommit: true, message: [0xC1])],
                    "the Welcome of epoch 1 first, then the commit that ends epoch 1; nothing of the refused commit")
            let members = try await storage.fetch(for: member, now: 2, limit: 10, after: 0, groups: true).messages.compactMap(\.group)
            #expect(members.map(\.message) == [[0xC0, 0], [0xC1]], "members get commits, not the Welcome")

            // The Welcome's entries count against the mailbox limit like any other.
            next = GroupMessageWrite(groupId: groupId, epoch: 2, nextVerifier: [3], message: [0xC2], recipients: [member],
                                     deviceLists: [member.address: [1], newcomer.address: [2]], now: 1, expiresAt: 1000, mailboxLimit: 2)
            next.welcome = GroupWelcomeWrite(message: [0x3E, 2], recipients: [newcomer])
            #expect(try await storage.storeGroupMessage(next) == .mailboxFull(member), "the member holds 2 of 2")
            #expect(try await storage.group(groupId)?.epoch == 2, "a refused commit leaves the epoch")
            next = GroupMessageWrite(groupId: groupId, epoch: 2, nextVerifier: [3], message: [0xC2], recipients: [],
                                     deviceLists: [newcomer.address: [2]], now: 1, expiresAt: 1000, mailboxLimit: 2)
            next.welcome = GroupWelcomeWrite(message: [0x3E, 2], recipients: [newcomer])
            #expect(try await storage.storeGroupMessage(next) == .mailboxFull(newcomer), "the newcomer holds 2 of 2")
            next = GroupMessageWrite(groupId: groupId, epoch: 2, nextVerifier: [3], message: [0xC2], recipients: [],
                                     deviceLists: [newcomer.address: [99]], now: 1, expiresAt: 1000, mailboxLimit: 10)
            next.welcome = GroupWelcomeWrite(message: [0x3E, 2], recipients: [newcomer])
            #expect(try await storage.storeGroupMessage(next) == .deviceListChanged, "the Welcome's accounts are checked as the commit's")
            #expect(try await storage.fetch(for: newcomer, now: 2, limit: 10, after: 0, groups: true).messages.count == 2)
        }
    }
}
