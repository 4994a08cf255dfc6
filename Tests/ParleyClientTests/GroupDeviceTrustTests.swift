import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport
import Testing

/// A verified contact's safety number covers their group leaves, and a member's key changes are said in
/// the groups shared with them (PROTOCOL.md §17.8), on the relay core in process with real store files.
@Suite("Engine: group leaves and the safety number")
struct GroupDeviceTrustTests {
    /// A KeyPackage whose credential names `device` but whose signature key is a fresh one: no device list
    /// of that account holds it.
    static func forgedKeyPackage(naming device: DeviceAddress) throws -> KeyPackage {
        let suite = Engine.groupSuite
        let signer = try SignaturePrivateKey(seed: Ed25519.KeyPair().seed)
        let initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let now = UInt64(Date().timeIntervalSince1970)
        var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signer.publicKey,
                            credential: .basic(identity: GroupCredential.identity(device)), capabilities: Capabilities(cipherSuites: [suite.id]),
                            source: .keyPackage(Lifetime(notBefore: now - 3600, notAfter: now + 86_400)), extensions: [])
        try leaf.sign(suite: suite, key: signer, context: nil)
        var package = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
        package.sign(suite: suite, key: signer)
        return package
    }

    func notices(_ device: ClientDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.direction == .system }.map(\.text)
    }

    @Test("a commit adding a leaf for a verified contact's device that is not in their verified list is refused, and the group's conversation says so")
    func leafOutsideAVerifiedListIsRefusedWithANotice() async throws {
        let w = try await GroupEngineTests.world()
        let bobAddress = await w.bob.address, carolAddress = await w.carol.address
        let digits = try await w.alice.engine.safetyNumber(with: bobAddress).digits
        #expect(try await w.alice.engine.verify(bobAddress, digits: digits) == .verified)
        let id = try await w.alice.engine.createGroup(name: "verified", members: [bobAddress, carolAddress]).id
        for device in w.all { try await device.engine.receivePending() }
        let before = try #require(try w.alice.store.group(id))

        // Carol (a member) commits an Add of a leaf that names Bob's device 3 under a key Bob never listed.
        let bob3 = DeviceAddress(address: bobAddress.description, deviceId: 3)
        let old = try Group(serialized: SecretBytes(try #require(try w.carol.store.group(id)).state))
        var next = old
        let output = try next.commit(adding: [try Self.forgedKeyPackage(naming: bob3)])
        let alice = await w.alice.deviceAddress
        try await w.relay.commit(GroupSend(epoch: old.epoch, message: Base64Bytes(output.message.tlsEncoded),
                                           recipients: [GroupRecipient(address: alice.address, deviceId: alice.deviceId)],
                                           nextVerifier: Engine.verifier(next)),
                                 toGroup: id.hex, secret: Engine.sendSecret(old))

        let events = try await w.alice.engine.receivePending()
        let after = try #require(try w.alice.store.group(id))
        #expect(after.epoch == before.epoch && after.members == before.members, "the commit changed nothing")
        let said = try notices(w.alice, id)
        #expect(said.contains { $0.contains("\(bob3)") && $0.contains("that you verified") && $0.contains("refused") }, "\(said)")
        #expect(events.contains { if case .undecryptable = $0 { true } else { false } })
    }

    @Test("a member's new device key is said in every group shared with them")
    func memberKeyChangeIsSaidInTheGroup() async throws {
        let w = try await GroupEngineTests.world()
        let bobAddress = await w.bob.address, carolAddress = await w.carol.address
        let shared = try await w.alice.engine.createGroup(name: "with Bob", members: [bobAddress]).id
        let without = try await w.alice.engine.createGroup(name: "without Bob", members: [carolAddress]).id
        for device in w.all { try await device.engine.receivePending() }

        _ = try await w.bob.engine.rotateDeviceKey()
        try await w.alice.engine.refreshDeviceList(bobAddress)
        #expect(try notices(w.alice, shared).contains("\(bobAddress)'s device 1 has a new key."))
        #expect(try !notices(w.alice, without).contains { $0.contains("new key") })
    }
}
