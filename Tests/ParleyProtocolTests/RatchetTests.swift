import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// A PQXDH start plus a Double Ratchet pair, without the session manager.
private func startSession(random: DeterministicRandom = DeterministicRandom(label: "ratchet")) throws -> (alice: RatchetSession, bob: RatchetSession, first: RatchetMessage, bobKeys: LocalPreKeys) {
    let alice = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
    let bob = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
    let bobKeys = LocalPreKeys.generate(oneTime: 1, random: random)
    let bundle = bobKeys.bundle(identity: bob, oneTimePreKeyId: bobKeys.oneTimePreKeys.keys.first,
                                oneTimePQPreKeyId: bobKeys.oneTimePQPreKeys.keys.first)
    let initiation = try PQXDH.initiate(identity: alice, bundle: bundle, random: random)
    var aliceSession = try RatchetSession.initiator(initiation, localIdentity: alice.publicKey, bundle: bundle, random: random)
    let first = try aliceSession.encrypt(Array("hello"))
    let response = try PQXDH.respond(identity: bob, preKeys: bobKeys, header: initiation.header)
    #expect(response.sharedKey.constantTimeEquals(initiation.sharedKey))
    #expect(response.associatedData == initiation.associatedData)
    let bobSession = RatchetSession.responder(response, localIdentity: bob.publicKey, remoteIdentity: alice.publicKey)
    return (aliceSession, bobSession, first, bobKeys)
}

@Test func pqxdhAgreesAndMessagesFlowBothWays() throws {
    var (alice, bob, first, _) = try startSession()
    #expect(try bob.decrypt(first) == Array("hello"))
    for round in 0..<6 {
        let toAlice = try bob.encrypt(Array("b\(round)"))
        #expect(try alice.decrypt(toAlice) == Array("b\(round)"))
        let toBob = try alice.encrypt(Array("a\(round)"))
        #expect(try bob.decrypt(toBob) == Array("a\(round)"))
    }
    // Both ends of the chain Alice just used hold the same chain key.
    #expect(alice.exportSecretsForTesting().sendingChainKey == bob.exportSecretsForTesting().receivingChainKey)
}

@Test func outOfOrderAcrossRatchetSteps() throws {
    var (alice, bob, first, _) = try startSession()
    _ = try bob.decrypt(first)
    let held = try (0..<3).map { try alice.encrypt(Array("late \($0)")) }
    let reply = try bob.encrypt(Array("reply"))
    _ = try alice.decrypt(reply)
    let next = try alice.encrypt(Array("new chain"))
    #expect(try bob.decrypt(next) == Array("new chain"))
    for (i, m) in held.enumerated().reversed() { #expect(try bob.decrypt(m) == Array("late \(i)")) }
}

@Test func replayIsRefusedAndChangesNothing() throws {
    var (alice, bob, first, _) = try startSession()
    _ = try bob.decrypt(first)
    let m = try alice.encrypt(Array("once"))
    _ = try bob.decrypt(m)
    let before = bob.exportSecretsForTesting()
    #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(m) }
    #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(first) }
    let after = bob.exportSecretsForTesting()
    #expect(before.rootKey == after.rootKey && before.receivingChainKey == after.receivingChainKey && before.receiveCount == after.receiveCount)
}

/// Stored sessions keep the sending ratchet key's public half (version 2); a session stored by a version
/// that did not (version 1) reads back the same, its public half computed from the private one.
@Test func storedSessionsOfBothVersionsReadBack() throws {
    var (alice, bob, first, _) = try startSession()
    _ = try bob.decrypt(first)
    _ = try alice.decrypt(try bob.encrypt(Array("reply")))
    let stored = alice.serialized()
    #expect(stored.first == 2)
    let restored = try RatchetSession(serialized: stored)
    #expect(restored.serialized() == stored)
    #expect(restored.sendingRatchetKey.publicKey == alice.sendingRatchetKey.publicKey)

    // Version 1: the same bytes without the public half that follows the private one.
    let privateHalf = alice.sendingRatchetKey.privateKey.withUnsafeBytes { Array($0) }
    let pair = privateHalf + alice.sendingRatchetKey.publicKey.bytes
    let at = try #require((0...(stored.count - pair.count)).first { Array(stored[$0..<($0 + pair.count)]) == pair })
    var legacy = Array(stored[..<(at + 32)] + stored[(at + 64)...])
    legacy[0] = 1
    let upgraded = try RatchetSession(serialized: legacy)
    #expect(upgraded.serialized() == stored)

    // Another version is refused, not misread.
    legacy[0] = 3
    #expect(throws: ProtocolError.self) { try RatchetSession(serialized: legacy) }
    // So is a version 2 session cut short inside the public half.
    #expect(throws: ProtocolError.self) { try RatchetSession(serialized: Array(stored[..<(at + 48)])) }
}
