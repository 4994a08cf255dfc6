import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// A group message or commit names up to 2,000 devices: the relay reads their accounts in one storage call
/// (`RelayStorage.accounts`), on SQLite and PostgreSQL alike, not one read per account (issue #22: at 1,000
/// accounts the per-account reads were most of a commit's time at the relay).
@Suite("Group recipients' accounts in one read (SQLite and PostgreSQL)")
struct GroupRecipientReadsTests {
    @Test("accounts(_:) returns every stored account asked for, past one query's chunk, and leaves out the unknown",
          arguments: StorageKind.allCases)
    func batchRead(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            let count = SQLiteRelayStorage.accountsPerQuery * 2 + 7
            for index in 0..<count {
                #expect(try await storage.createAccount(address: "m\(index)@relay.test", accountKey: [UInt8(index % 251)],
                                                        deviceList: [UInt8(index % 7), UInt8(index / 256)]))
            }
            #expect(try await storage.accounts([]).isEmpty)
            let asked = (0..<count).map { "m\($0)@relay.test" } + ["nobody@relay.test", "m0@relay.test"]
            let found = try await storage.accounts(asked)
            #expect(found.count == count, "every stored account once; the unknown address left out")
            #expect(found["nobody@relay.test"] == nil)
            for index in [0, 1, SQLiteRelayStorage.accountsPerQuery, count - 1] {
                #expect(found["m\(index)@relay.test"] == StoredAccount(accountKey: [UInt8(index % 251)], deviceList: [UInt8(index % 7), UInt8(index / 256)]))
                #expect(try await storage.account("m\(index)@relay.test") == found["m\(index)@relay.test"], "the same as one account's read")
            }
        }
    }

    @Test("a group send and a commit to 60 accounts read their accounts in one storage call, and still refuse an unknown device")
    func oneReadPerSend() async throws {
        let directory = try TemporaryDirectory("group-reads")
        let export = MetricsExport(host: "127.0.0.1", port: 0)
        let storage = InstrumentedRelayStorage(inner: try SQLiteRelayStorage(path: directory.sub("relay.db")), metrics: export.metrics)
        let core = RelayCore(configuration: RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path),
                             storage: storage, broker: LocalWakeBroker())
        var recipients: [GroupRecipient] = []
        for index in 0..<60 {
            let accountKey = Ed25519.KeyPair()
            let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: Ed25519.KeyPair().publicKey, createdAt: 1)],
                                             version: 1, accountKey: accountKey)
            let address = "member\(index)@relay.test"
            _ = try await core.register(RegisterRequest(address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                        deviceList: Base64Bytes(list.encoded)))
            recipients.append(GroupRecipient(address: address, deviceId: 1))
        }
        let groupId = [UInt8](repeating: 0x42, count: RelayAPI.groupIdLength)
        let secrets = [[UInt8](repeating: 1, count: RelayAPI.groupSecretLength), [UInt8](repeating: 2, count: RelayAPI.groupSecretLength)]
        func verifier(_ epoch: UInt64) -> Base64Bytes {
            Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: epoch, secret: secrets[Int(epoch)]))
        }
        _ = try await core.createGroup(GroupCreation(groupId: Hex.encode(groupId), verifier: verifier(0)))
        let reads = { (operation: String) -> Double in
            RelayMetricsTests.value(String(decoding: export.registry.emitToBuffer(), as: UTF8.self), "parley_relay_storage_seconds_count",
                                    ["operation": operation]) ?? 0
        }
        let before = (one: reads("account"), many: reads("accounts"))

        #expect(try await core.sendToGroup(Hex.encode(groupId), GroupSend(epoch: 0, message: Base64Bytes([1]), recipients: recipients),
                                           secret: secrets[0], commit: false) == 60)
        #expect(try await core.sendToGroup(Hex.encode(groupId), GroupSend(epoch: 0, message: Base64Bytes([2]), recipients: recipients,
                                                                          nextVerifier: verifier(1)),
                                           secret: secrets[0], commit: true) == 60)
        #expect(reads("account") - before.one == 0, "no account read one by one")
        #expect(reads("accounts") - before.many == 2, "one read of the 60 accounts per send")

        let unknown = recipients + [GroupRecipient(address: "member7@relay.test", deviceId: 9)]
        await #expect(throws: RelayError.self) {
            try await core.sendToGroup(Hex.encode(groupId), GroupSend(epoch: 1, message: Base64Bytes([3]), recipients: unknown),
                                       secret: secrets[1], commit: false)
        }
        let page = try await core.fetchWithGroups(for: DeviceAddress(address: "member7@relay.test", deviceId: 1), limit: 10)
        #expect(page.messages.count == 2, "the refused send stored nothing")
    }
}
