import Testing
import ParleyCrypto
@testable import ParleyProtocol
import ParleyTestSupport

/// Delivers every envelope to the device it names and returns what each recipient read.
private func deliver(_ envelopes: [OutgoingEnvelope], to devices: [TestDevice]) async throws -> [DeviceAddress: [UInt8]] {
    var read: [DeviceAddress: [UInt8]] = [:]
    for envelope in envelopes {
        let device = try #require(devices.first { $0.address == envelope.recipient })
        read[envelope.recipient] = try await device.manager.receive(envelope.envelope).content
    }
    return read
}

@Test func fanOutReachesEveryPeerDeviceAndOwnOtherDevices() async throws {
    let world = TestWorld()
    let alice = world.account("alice@relay.test", devices: 2)
    let bob = world.account("bob@relay.test", devices: 2)
    world.introduce(alice, bob)
    let envelopes = try await alice[0].manager.send(Array("hi bob"), to: "bob@relay.test")
    #expect(Set(envelopes.map(\.recipient)) == [bob[0].address, bob[1].address, alice[1].address])
    let read = try await deliver(envelopes, to: alice + bob)
    #expect(read.values.allSatisfy { $0 == Array("hi bob") })
    #expect(read.count == 3)

    // Bob replies from device 2; Alice's device 1 reads it on the session it started.
    let reply = try await bob[1].manager.send(Array("hi alice"), to: "alice@relay.test")
    let replies = try await deliver(reply, to: alice + bob)
    #expect(replies[alice[0].address] == Array("hi alice"))
    #expect(alice[0].store.sessions(for: bob[1].address).active?.pendingPreKey == nil)
}

@Test func simultaneousInitiationConverges() async throws {
    let world = TestWorld()
    let alice = world.account("alice@relay.test")
    let bob = world.account("bob@relay.test")
    world.introduce(alice, bob)
    let fromAlice = try await alice[0].manager.send(Array("a1"), to: "bob@relay.test")
    let fromBob = try await bob[0].manager.send(Array("b1"), to: "alice@relay.test")
    _ = try await deliver(fromAlice, to: bob)
    _ = try await deliver(fromBob, to: alice)
    // Each side now has two sessions; after one exchange in each direction both use the same one.
    for round in 0..<3 {
        let a = try await alice[0].manager.send(Array("a\(round)"), to: "bob@relay.test")
        #expect(try await deliver(a, to: bob)[bob[0].address] == Array("a\(round)"))
        let b = try await bob[0].manager.send(Array("b\(round)"), to: "alice@relay.test")
        #expect(try await deliver(b, to: alice)[alice[0].address] == Array("b\(round)"))
    }
    let aliceActive = try #require(alice[0].store.sessions(for: bob[0].address).active)
    let bobActive = try #require(bob[0].store.sessions(for: alice[0].address).active)
    #expect(aliceActive.associatedData == bobActive.associatedData)
    // Bob spoke last: Alice's session holds the ratchet key Bob's active session sends with.
    #expect(aliceActive.exportSecretsForTesting().remoteRatchetPublicKey == bobActive.exportSecretsForTesting().sendingRatchetPublicKey)
}

@Test func tamperedEnvelopeIsRefusedWithoutStateChange() async throws {
    let world = TestWorld()
    let alice = world.account("alice@relay.test")
    let bob = world.account("bob@relay.test")
    world.introduce(alice, bob)
    let envelopes = try await alice[0].manager.send(Array("secret"), to: "bob@relay.test")
    var bytes = envelopes[0].envelope
    bytes[bytes.count - 20] ^= 0x01
    await #expect(throws: ProtocolError.decryptionFailed) { try await bob[0].manager.receive(bytes) }
    #expect(bob[0].store.receivedLog.isEmpty)
    #expect(bob[0].store.sessions(for: alice[0].address).isEmpty)
    #expect(try await bob[0].manager.receive(envelopes[0].envelope).content == Array("secret"))
    await #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try await bob[0].manager.receive(envelopes[0].envelope) }
}

/// A device offline for longer than a certificate's lifetime: its own certificate is renewed when it
/// sends again, and the mail that waited for it is checked against the time the relay took it in.
@Test func certificatesAreRenewedAndLateMailIsCheckedAgainstTheRelayTime() async throws {
    let world = TestWorld()
    let alice = world.account("alice@relay.test")
    let bob = world.account("bob@relay.test")
    world.introduce(alice, bob)
    let day: UInt64 = 86_400_000
    // Sent at day 0 under a certificate that (in these fixtures) lasts one day.
    let early = try await alice[0].manager.send(Array("sent at day 0"), to: "bob@relay.test")
    let later = FixedClock(now: world.clock.now + 8 * day)
    let bobLater = bob[0].manager(clock: later)
    await #expect(throws: ProtocolError.self) { try await bobLater.receive(early[0].envelope) }
    await #expect(throws: ProtocolError.self) { try await bobLater.receive(early[0].envelope, receivedAt: later.now) }
    #expect(try await bobLater.receive(early[0].envelope, receivedAt: world.clock.now + 1_000).content == Array("sent at day 0"))

    // Eight days on, Alice sends again: a fresh certificate, which Bob accepts at that time.
    let aliceLater = alice[0].manager(clock: later)
    let fresh = try await aliceLater.send(Array("a week later"), to: "bob@relay.test")
    #expect(await aliceLater.account.certificate.expiresAt == later.now + LocalAccount.certificateLifetime)
    #expect(try await bobLater.receive(fresh[0].envelope, receivedAt: later.now).content == Array("a week later"))
    // A receivedAt in the future counts as now: a relay cannot stretch a certificate that way.
    let afterExpiry = FixedClock(now: later.now + 8 * day)
    let third = try await aliceLater.send(Array("third"), to: "bob@relay.test")
    await #expect(throws: ProtocolError.self) {
        try await bob[0].manager(clock: afterExpiry).receive(third[0].envelope, receivedAt: afterExpiry.now + 30 * day)
    }
}
