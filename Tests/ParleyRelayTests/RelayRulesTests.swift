import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// The rules that are `RelayCore`'s, not a storage's, hold the same over both storages: which devices a
/// send must name, what a device-list change wipes, that a stored device list is verified when read, and
/// the prekey limits.
@Suite("Relay rules over both storages")
struct RelayRulesTests {
    let accountKey = Ed25519.KeyPair()
    let first = Ed25519.KeyPair(), second = Ed25519.KeyPair()
    let address = "alice@relay.test"

    func withCore(_ kind: StorageKind, _ body: (RelayCore, any RelayStorage) async throws -> Void) async throws {
        try await kind.withStorage { storage, directory in
            var configuration = RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path)
            configuration.maxStoredOneTimePreKeys = 5
            let core = RelayCore(configuration: configuration, storage: storage, broker: LocalWakeBroker())
            let list = list(version: 1, [(1, first), (2, second)])
            _ = try await core.register(RegisterRequest(address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                        deviceList: Base64Bytes(list.encoded)))
            try await body(core, storage)
        }
    }

    func list(version: UInt64, _ devices: [(UInt32, Ed25519.KeyPair)]) -> SignedDeviceList {
        SignedDeviceList.sign(devices: devices.map { DeviceEntry(deviceId: $0.0, identityKey: $0.1.publicKey, createdAt: 1) }, version: version,
                              accountKey: accountKey)
    }

    func message(_ deviceId: UInt32, _ key: Ed25519.KeyPair, _ envelope: [UInt8] = [1]) -> OutgoingMessage {
        OutgoingMessage(deviceId: deviceId, deviceKey: Base64Bytes(key.publicKey.bytes), envelope: Base64Bytes(envelope))
    }

    @Test("a send must name every device of the list with its key, and no other; a refused send stores nothing",
          arguments: StorageKind.allCases)
    func deviceMismatch(kind: StorageKind) async throws {
        try await withCore(kind) { core, _ in
            let stranger = Ed25519.KeyPair()
            await #expect(throws: RelayError.deviceMismatch(missing: [2], extra: [3], stale: [1])) {
                try await core.send(SendRequest(messages: [message(1, stranger), message(3, stranger)]), to: address)
            }
            // The sending device itself need not be named in copies to its own account.
            try await core.send(SendRequest(messages: [message(2, second)]), to: address, sender: DeviceAddress(address: address, deviceId: 1))
            #expect(try await core.fetch(for: DeviceAddress(address: address, deviceId: 1), limit: 10).messages.isEmpty)
            #expect(try await core.fetch(for: DeviceAddress(address: address, deviceId: 2), limit: 10).messages.count == 1)
        }
    }

    @Test("a new key under an old device id wipes that device's mail and prekeys; the other device keeps its mail",
          arguments: StorageKind.allCases)
    func keyChangeWipes(kind: StorageKind) async throws {
        try await withCore(kind) { core, storage in
            let one = DeviceAddress(address: address, deviceId: 1), two = DeviceAddress(address: address, deviceId: 2)
            try await core.send(SendRequest(messages: [message(1, first, [1]), message(2, second, [2])]), to: address)
            #expect(try await storage.storePreKeys(for: one, signed: nil, lastResort: nil, oneTime: [StoredSignedKey(id: 1, key: [1], signature: [])],
                                                   oneTimePQ: [], limit: 5))
            let replaced = Ed25519.KeyPair()
            try await core.updateDeviceList(DeviceListUpdate(deviceList: Base64Bytes(list(version: 2, [(1, replaced), (2, second)]).encoded)), for: address)
            #expect(try await core.fetch(for: one, limit: 10).messages.isEmpty)
            #expect(try await storage.preKeyCounts(for: one) == (0, 0))
            #expect(try await core.fetch(for: two, limit: 10).messages.map(\.envelope.bytes) == [[2]])
            // A send checked against the old list is now stale for device 1.
            await #expect(throws: RelayError.deviceMismatch(missing: [], extra: [], stale: [1])) {
                try await core.send(SendRequest(messages: [message(1, first), message(2, second)]), to: address)
            }
        }
    }

    @Test("a stored device list that does not verify is refused when read, not trusted", arguments: StorageKind.allCases)
    func storedListVerified(kind: StorageKind) async throws {
        try await withCore(kind) { core, storage in
            let stored = try #require(try await storage.account(address))
            var forged = stored.deviceList
            forged[forged.count - 1] ^= 1
            #expect(try await storage.replaceDeviceList(address: address, replacing: stored.deviceList, with: forged, wiping: []))
            await #expect(throws: RelayError.unavailable("the stored device list of \(address) does not verify")) {
                try await core.account(address)
            }
            await #expect(throws: RelayError.unavailable("the stored device list of \(address) does not verify")) {
                try await core.send(SendRequest(messages: [message(1, first), message(2, second)]), to: address)
            }
        }
    }

    @Test("prekey limits: at most the configured number held; a refused upload stores nothing", arguments: StorageKind.allCases)
    func preKeyLimit(kind: StorageKind) async throws {
        try await withCore(kind) { core, _ in
            let device = DeviceAddress(address: address, deviceId: 1)
            func upload(_ ids: ClosedRange<UInt32>) async throws {
                try await core.uploadPreKeys(PreKeyUpload(signedPreKey: nil, lastResortPQPreKey: nil,
                                                          oneTimePreKeys: ids.map { OneTimePreKeyEntry(id: $0, key: Base64Bytes(SystemRandom().bytes(32))) },
                                                          oneTimePQPreKeys: []), by: device)
            }
            try await upload(1...4)
            await #expect(throws: RelayError.self) { try await upload(5...6) }
            #expect(try await core.preKeyCount(for: device).oneTimePreKeys == 4)
            try await upload(5...5)
            #expect(try await core.preKeyCount(for: device).oneTimePreKeys == 5)
        }
    }
}
