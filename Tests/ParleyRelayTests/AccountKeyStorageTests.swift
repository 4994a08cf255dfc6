import Foundation
import ParleyProtocol
@testable import ParleyRelay
import Testing

/// `RelayStorage.replaceAccountKey` (PROTOCOL.md §3.5) on both storages: the key, the list and the statement
/// change together, only while the list is still the one read, wiping the devices named.
@Suite("Relay storage: an account key change (SQLite and PostgreSQL)")
struct AccountKeyStorageTests {
    static let alice = "alice@relay.example"

    @Test("the key, list and statement are replaced together, only if the list is still the one read", arguments: StorageKind.allCases)
    func replaceAccountKey(kind: StorageKind) async throws {
        try await kind.withStorage { storage, _ in
            let one = DeviceAddress(address: Self.alice, deviceId: 1), two = DeviceAddress(address: Self.alice, deviceId: 2)
            _ = try await storage.createAccount(address: Self.alice, accountKey: [1], deviceList: [10])
            #expect(try await storage.accountKeyChange(of: Self.alice) == nil)
            for device in [one, two] { try await storage.storeToken(hash: [UInt8(device.deviceId)], device: device, expiresAt: .max / 2) }

            #expect(try await !storage.replaceAccountKey(address: Self.alice, replacing: [99], accountKey: [2], deviceList: [11],
                                                         keyChange: [42], wiping: [2]))
            #expect(try await storage.account(Self.alice) == StoredAccount(accountKey: [1], deviceList: [10]))
            #expect(try await storage.accountKeyChange(of: Self.alice) == nil)
            #expect(try await storage.device(forTokenHash: [2], now: 2) == two)

            #expect(try await storage.replaceAccountKey(address: Self.alice, replacing: [10], accountKey: [2], deviceList: [11],
                                                        keyChange: [42], wiping: [2]))
            #expect(try await storage.account(Self.alice) == StoredAccount(accountKey: [2], deviceList: [11]))
            #expect(try await storage.accountKeyChange(of: Self.alice) == [42])
            #expect(try await storage.device(forTokenHash: [2], now: 2) == nil)
            #expect(try await storage.device(forTokenHash: [1], now: 2) == one)
            #expect(try await storage.accountKeyChange(of: "nobody@relay.example") == nil)
        }
    }
}
