import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// Inputs the relay takes only in the one form the API documents, checked at its core (the routes pass
/// them through): from a hostile-client review that found each of these accepted.
@Suite("Relay: input in its documented form only")
struct RelayInputTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory("input") }

    func core() throws -> RelayCore {
        RelayCore(configuration: RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path),
                  storage: try SQLiteRelayStorage(path: directory.sub("relay.db")), broker: LocalWakeBroker())
    }

    func registration(version: UInt64 = 1, deviceId: UInt32 = 1, device: Ed25519.KeyPair = Ed25519.KeyPair(),
                      accountKey: Ed25519.KeyPair = Ed25519.KeyPair()) -> RegisterRequest {
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: deviceId, identityKey: device.publicKey, createdAt: 1)],
                                         version: version, accountKey: accountKey)
        return RegisterRequest(address: "alice@relay.test", accountKey: Base64Bytes(accountKey.publicKey.bytes), deviceList: Base64Bytes(list.encoded))
    }

    @Test("numbers in paths and ids: digits only, no sign, no leading zero")
    func canonicalNumbers() {
        for good in ["0", "1", "42", "4294967295"] { #expect(RelayCore.canonicalNumber(good) == good) }
        for bad in ["", "+1", "-1", "01", "00", " 1", "1 ", "1e3", "0x1", "١"] { #expect(RelayCore.canonicalNumber(bad) == nil, "\(bad)") }
    }

    @Test("a new account's list has version 1 and device ids from 1, and later lists too; an acknowledgement id '+1' is refused")
    func registrationAndAcknowledgement() async throws {
        let core = try core()
        await #expect(throws: RelayError.self) { _ = try await core.register(registration(version: UInt64.max)) }
        await #expect(throws: RelayError.self) { _ = try await core.register(registration(deviceId: 0)) }
        let accountKey = Ed25519.KeyPair(), deviceKey = Ed25519.KeyPair()
        _ = try await core.register(registration(device: deviceKey, accountKey: accountKey))
        let withZero = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 0, identityKey: Ed25519.KeyPair().publicKey, createdAt: 2),
                                                       DeviceEntry(deviceId: 1, identityKey: deviceKey.publicKey, createdAt: 1)],
                                             version: 2, accountKey: accountKey)
        await #expect(throws: RelayError.self) {
            try await core.updateDeviceList(DeviceListUpdate(deviceList: Base64Bytes(withZero.encoded)), for: "alice@relay.test")
        }
        let device = DeviceAddress(address: "alice@relay.test", deviceId: 1)
        await #expect(throws: RelayError.self) { _ = try await core.acknowledge(AckRequest(ids: ["+1"]), for: device) }
        await #expect(throws: RelayError.self) { _ = try await core.acknowledge(AckRequest(ids: ["01"]), for: device) }
    }

    @Test("a send naming a stale device in each of its messages reports that device once")
    func staleDeviceOnce() async throws {
        let core = try core()
        _ = try await core.register(registration())
        let stranger = Base64Bytes(Ed25519.KeyPair().publicKey.bytes)
        let send = SendRequest(messages: (1...3).map { _ in OutgoingMessage(deviceId: 1, deviceKey: stranger, envelope: Base64Bytes([1])) })
        await #expect(throws: RelayError.deviceMismatch(missing: [], extra: [], stale: [1])) { try await core.send(send, to: "alice@relay.test") }
    }
}
