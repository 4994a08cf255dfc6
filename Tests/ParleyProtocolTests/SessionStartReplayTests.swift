import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// A session start replayed long after its session moved on (more ratchet steps than the retired-key
/// memory holds, and no one-time prekey to burn) is refused, and the live session stays active.
@Test func replayedSessionStartAfterManyRatchetStepsIsRefused() async throws {
    let world = TestWorld()
    let alice = world.account("alice@relay.test")
    let bob = world.account("bob@relay.test")
    world.introduce(alice, bob)
    // Use up Bob's one-time prekeys so the start below rests on the last-resort keys only.
    for _ in 0..<3 { _ = try await world.bundles.bundle(for: bob[0].address) }
    let start = try await alice[0].manager.send(Array("pay 100".utf8), to: "bob@relay.test")
    #expect(try await bob[0].manager.receive(start[0].envelope).content == Array("pay 100".utf8))
    for round in 0..<12 {
        let b = try await bob[0].manager.send(Array("b\(round)".utf8), to: "alice@relay.test")
        _ = try await alice[0].manager.receive(b[0].envelope)
        let a = try await alice[0].manager.send(Array("a\(round)".utf8), to: "bob@relay.test")
        _ = try await bob[0].manager.receive(a[0].envelope)
    }
    let before = try #require(bob[0].store.sessions(for: alice[0].address).active).exportSecretsForTesting()
    await #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try await bob[0].manager.receive(start[0].envelope) }
    let after = try #require(bob[0].store.sessions(for: alice[0].address).active).exportSecretsForTesting()
    #expect(before.rootKey == after.rootKey && before.sendingRatchetPublicKey == after.sendingRatchetPublicKey)
    // The conversation goes on in the live session.
    let next = try await bob[0].manager.send(Array("still here".utf8), to: "alice@relay.test")
    #expect(try await alice[0].manager.receive(next[0].envelope).content == Array("still here".utf8))
}
