import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// What one device can make the relay store in prekeys: bounded per upload and in total, so a
/// self-registered account cannot grow the database without end.
@Suite("Relay: prekey upload limits")
struct RelayPreKeyLimitsTests {
    let directory: TemporaryDirectory
    let deviceKey = Ed25519.KeyPair()
    let device = DeviceAddress(address: "alice@relay.test", deviceId: 1)

    init() throws { directory = try TemporaryDirectory("prekeys") }

    func core() async throws -> RelayCore {
        var configuration = RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path)
        configuration.maxStoredOneTimePreKeys = 250
        let core = RelayCore(configuration: configuration, storage: try SQLiteRelayStorage(path: directory.sub("relay.db")),
                             broker: LocalWakeBroker())
        let accountKey = Ed25519.KeyPair()
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: deviceKey.publicKey, createdAt: 1)],
                                         version: 1, accountKey: accountKey)
        _ = try await core.register(RegisterRequest(address: device.address, accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                    deviceList: Base64Bytes(list.encoded)))
        return core
    }

    func classical(_ ids: Range<UInt32>) -> [OneTimePreKeyEntry] {
        ids.map { OneTimePreKeyEntry(id: $0, key: Base64Bytes(SystemRandom().bytes(32))) }
    }

    func upload(_ core: RelayCore, _ oneTime: [OneTimePreKeyEntry], pq: [SignedPreKeyEntry] = []) async throws {
        try await core.uploadPreKeys(PreKeyUpload(signedPreKey: nil, lastResortPQPreKey: nil, oneTimePreKeys: oneTime, oneTimePQPreKeys: pq),
                                     by: device)
    }

    @Test("at most 100 one-time prekeys of a kind per upload, none with id 0, a bounded number held; a refused upload stores nothing")
    func limits() async throws {
        let core = try await core()
        await #expect(throws: RelayError.self) { try await upload(core, classical(1..<102)) }
        #expect(try await core.preKeyCount(for: device).oneTimePreKeys == 0)

        try await upload(core, classical(1..<101))
        try await upload(core, classical(101..<201))
        // 100 more would make 300 of the 250 a device may hold: refused whole.
        await #expect(throws: RelayError.self) { try await upload(core, classical(201..<301)) }
        #expect(try await core.preKeyCount(for: device).oneTimePreKeys == 200)
        try await upload(core, classical(201..<251))
        #expect(try await core.preKeyCount(for: device).oneTimePreKeys == 250)

        // Id 0 means "no one-time prekey" in a session's first message (PROTOCOL.md §3.3), for either kind.
        let kem = MLKEM1024KEM.KeyPair(random: SystemRandom()).publicKey
        let zero = SignedPreKeyEntry(id: 0, key: Base64Bytes(kem.bytes), signature: Base64Bytes(deviceKey.sign(KeyEncoding.encode(kem))))
        await #expect(throws: RelayError.self) { try await upload(core, [], pq: [zero]) }
        #expect(try await core.preKeyCount(for: device).oneTimePQPreKeys == 0)
    }
}
