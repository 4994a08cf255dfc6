import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// Lifetimes at the relay, checked against a clock the test moves (no waiting): session tokens,
/// challenges, queued mail and provisioning slots all stop working when they expire.
@Suite("Relay: expiry of tokens, challenges, mail and provisioning slots")
struct RelayExpiryTests {
    let clock = ManualClock()
    let directory: TemporaryDirectory

    init() throws { directory = try TemporaryDirectory("expiry") }
    let device = Ed25519.KeyPair()

    func core() throws -> RelayCore {
        var configuration = RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path)
        configuration.tokenLifetime = 60_000
        configuration.challengeLifetime = 10_000
        configuration.messageTTL = 120_000
        configuration.provisioningTTL = 30_000
        return RelayCore(configuration: configuration, storage: try SQLiteRelayStorage(path: directory.sub("relay.db")),
                         broker: LocalWakeBroker(), clock: clock)
    }

    func register(_ core: RelayCore) async throws {
        let accountKey = Ed25519.KeyPair()
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: 1)],
                                         version: 1, accountKey: accountKey)
        _ = try await core.register(RegisterRequest(address: "alice@relay.test", accountKey: Base64Bytes(accountKey.publicKey.bytes),
                                                    deviceList: Base64Bytes(list.encoded)))
    }

    func signIn(_ core: RelayCore, advancingBy delay: UInt64 = 0) async throws -> String {
        let challenge = try await core.challenge(ChallengeRequest(address: "alice@relay.test", deviceId: 1))
        clock.advance(by: delay)
        let signature = device.sign(authenticationMessage(challenge: challenge.challenge.bytes, relayName: "relay.test"))
        return try await core.session(SessionRequest(address: "alice@relay.test", deviceId: 1, challenge: challenge.challenge,
                                                     signature: Base64Bytes(signature))).token
    }

    @Test("a token works until its lifetime ends, then is refused; signing in again works")
    func tokenExpiry() async throws {
        let core = try core()
        try await register(core)
        let token = try await signIn(core)
        #expect(try await core.authenticate(token: token) == DeviceAddress(address: "alice@relay.test", deviceId: 1))
        clock.advance(by: 59_999)
        #expect(try await core.authenticate(token: token).deviceId == 1)
        clock.advance(by: 1)
        await #expect(throws: RelayError.self) { try await core.authenticate(token: token) }
        let fresh = try await signIn(core)
        #expect(try await core.authenticate(token: fresh).deviceId == 1)
    }

    @Test("a challenge answered after its lifetime is refused")
    func challengeExpiry() async throws {
        let core = try core()
        try await register(core)
        await #expect(throws: RelayError.self) { _ = try await signIn(core, advancingBy: 10_000) }
        _ = try await signIn(core, advancingBy: 9_999)
    }

    @Test("queued mail is fetched until its TTL, then no more")
    func mailExpiry() async throws {
        let core = try core()
        try await register(core)
        let message = OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(device.publicKey.bytes), envelope: Base64Bytes([1, 2, 3]))
        try await core.send(SendRequest(messages: [message]), to: "alice@relay.test")
        let me = DeviceAddress(address: "alice@relay.test", deviceId: 1)
        clock.advance(by: 119_999)
        #expect(try await core.fetch(for: me, limit: 10).messages.count == 1)
        clock.advance(by: 1)
        #expect(try await core.fetch(for: me, limit: 10).messages.isEmpty)
    }

    @Test("a provisioning slot waits, hands its message over once, and expires unfilled")
    func provisioningExpiry() async throws {
        let core = try core()
        let slot = try await core.createProvisioning()
        #expect(try await core.takeProvisioning(id: slot.id) == nil)
        let filler = DeviceAddress(address: "alice@relay.test", deviceId: 1)
        try await core.fillProvisioning(id: slot.id, with: ProvisioningMessage(message: Base64Bytes([7])), by: filler)
        await #expect(throws: RelayError.self) {
            try await core.fillProvisioning(id: slot.id, with: ProvisioningMessage(message: Base64Bytes([8])), by: filler)
        }
        #expect(try await core.takeProvisioning(id: slot.id)?.message.bytes == [7])
        await #expect(throws: RelayError.self) { _ = try await core.takeProvisioning(id: slot.id) }

        let late = try await core.createProvisioning()
        clock.advance(by: 30_000)
        await #expect(throws: RelayError.self) { _ = try await core.takeProvisioning(id: late.id) }
        await #expect(throws: RelayError.self) {
            try await core.fillProvisioning(id: late.id, with: ProvisioningMessage(message: Base64Bytes([9])), by: filler)
        }
    }
}
