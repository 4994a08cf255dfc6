import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// Encrypts `count` messages whose text names their message number N ("N7").
private func numbered(_ count: Int, from session: inout RatchetSession) throws -> [RatchetMessage] {
    try (0..<count).map { _ in
        let n = session.sendCount
        return try session.encrypt(Array("N\(n)"))
    }
}

/// PROTOCOL.md §5: the limits of §5.1, decryption on a copy (§5.3), duplicates, loss and reordering.
@Suite struct DoubleRatchetSpecTests {
    let parties = Parties("double ratchet spec")

    // MARK: §5.1 MAX_SKIP

    @Test func messageNeeding1001SkippedKeysIsRefusedAnd1000IsAccepted() throws {
        var (alice, bob, first) = try parties.start()
        let later = try numbered(1001, from: &alice)        // later[i] has N = i + 1
        let before = RatchetSnapshot(bob)
        #expect(throws: ProtocolError.tooManySkippedMessages(requested: 1001, limit: 1000)) { try bob.decrypt(later[1000]) }
        #expect(RatchetSnapshot(bob) == before)

        #expect(try bob.decrypt(later[999]) == Array("N1000"))
        #expect(bob.exportSecretsForTesting().skippedKeyCount == 1000)
        #expect(try bob.decrypt(first) == Array("first"))
    }

    /// The limit also covers the rest of the previous chain (up to PN) when the peer has ratcheted.
    @Test(arguments: [1000, 1001])
    func maxSkipAppliesToThePreviousChain(unread: Int) throws {
        var (alice, bob) = try parties.established()
        _ = try numbered(unread, from: &alice)               // never delivered
        _ = try alice.decrypt(try bob.encrypt(Array("reply")))
        let next = try alice.encrypt(Array("new chain"))     // PN = 1 + unread; Bob has read N = 0
        let before = RatchetSnapshot(bob)
        if unread <= ProtocolConstants.maxSkip {
            #expect(try bob.decrypt(next) == Array("new chain"))
            #expect(bob.exportSecretsForTesting().skippedKeyCount == unread)
        } else {
            #expect(throws: ProtocolError.tooManySkippedMessages(requested: unread, limit: 1000)) { try bob.decrypt(next) }
            #expect(RatchetSnapshot(bob) == before)
        }
    }

    // MARK: §5.1 MAX_STORED_SKIPPED

    @Test func storedSkippedKeysAreCappedAt2000OldestFirst() throws {
        var (alice, bob, first) = try parties.start()
        let m = [first] + (try numbered(2004, from: &alice))   // m[n] has N = n
        for n in [1000, 2000, 2002] { _ = try bob.decrypt(m[n]) } // stores 1000 + 999 + 1 skipped keys
        #expect(bob.exportSecretsForTesting().skippedKeyCount == 2000)

        #expect(try bob.decrypt(m[2004]) == Array("N2004"))      // stores N = 2003, evicts N = 0
        #expect(bob.exportSecretsForTesting().skippedKeyCount == 2000)
        #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(m[0]) }
        #expect(try bob.decrypt(m[1]) == Array("N1"))
        #expect(try bob.decrypt(m[2003]) == Array("N2003"))
    }

    // MARK: §5.3 A failed decryption changes nothing

    enum Tamper: CaseIterable, Sendable { case ciphertext, previousChainLength, messageNumber, ratchetKey }

    @Test(arguments: Tamper.allCases)
    func failedDecryptionChangesNoState(_ tamper: Tamper) throws {
        var (alice, bob) = try parties.established()
        _ = try alice.decrypt(try bob.encrypt(Array("reply")))
        let skippedOne = try alice.encrypt(Array("new chain 0"))
        let genuine = try alice.encrypt(Array("new chain 1"))   // reading it needs a DH step and a skipped key
        let h = genuine.header
        let forged = switch tamper {
        case .ciphertext:
            RatchetMessage(header: h, ciphertext: flipping(genuine.ciphertext, at: 0))
        case .previousChainLength:
            RatchetMessage(header: RatchetHeader(ratchetKey: h.ratchetKey, previousChainLength: h.previousChainLength + 1,
                                                 messageNumber: h.messageNumber), ciphertext: genuine.ciphertext)
        case .messageNumber:
            RatchetMessage(header: RatchetHeader(ratchetKey: h.ratchetKey, previousChainLength: h.previousChainLength,
                                                 messageNumber: h.messageNumber + 1), ciphertext: genuine.ciphertext)
        case .ratchetKey:
            RatchetMessage(header: RatchetHeader(ratchetKey: X25519.KeyPair(random: parties.random).publicKey,
                                                 previousChainLength: h.previousChainLength, messageNumber: h.messageNumber),
                           ciphertext: genuine.ciphertext)
        }

        let before = RatchetSnapshot(bob)
        #expect(throws: ProtocolError.decryptionFailed) { try bob.decrypt(forged) }
        #expect(RatchetSnapshot(bob) == before)
        #expect(try bob.decrypt(genuine) == Array("new chain 1"))
        #expect(try bob.decrypt(skippedOne) == Array("new chain 0"))
    }

    @Test func wrongAssociatedDataFailsAndChangesNoState() throws {
        let bundle = parties.bundle()
        let initiation = try PQXDH.initiate(identity: parties.alice, bundle: bundle)
        var alice = try RatchetSession.initiator(initiation, localIdentity: parties.alice.publicKey, bundle: bundle)
        let first = try alice.encrypt(Array("first"))
        let response = try PQXDH.respond(identity: parties.bob, preKeys: parties.bobKeys, header: initiation.header)
        // The same keys, but AD with the identities swapped: Encode(IK_B) ‖ Encode(IK_A).
        let swapped = PQXDH.Response(sharedKey: response.sharedKey,
                                     associatedData: PQXDH.associatedData(initiator: parties.bob.publicKey, responder: parties.alice.publicKey),
                                     signedPreKey: response.signedPreKey)
        var wrong = RatchetSession.responder(swapped, localIdentity: parties.bob.publicKey, remoteIdentity: parties.alice.publicKey)
        let before = RatchetSnapshot(wrong)
        #expect(throws: ProtocolError.decryptionFailed) { try wrong.decrypt(first) }
        #expect(RatchetSnapshot(wrong) == before)

        var right = RatchetSession.responder(response, localIdentity: parties.bob.publicKey, remoteIdentity: parties.alice.publicKey)
        #expect(try right.decrypt(first) == Array("first"))
    }

    // MARK: §5.3 Duplicates

    @Test func duplicatesInTheCurrentChainAreRefused() throws {
        var (alice, bob) = try parties.established()
        let m = try numbered(3, from: &alice)                  // N = 1, 2, 3
        _ = try bob.decrypt(m[2])                               // N = 1, 2 become skipped keys
        _ = try bob.decrypt(m[0])                               // read from the skipped store
        let before = RatchetSnapshot(bob)
        #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(m[2]) }
        #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(m[0]) }
        #expect(RatchetSnapshot(bob) == before)
        #expect(try bob.decrypt(m[1]) == Array("N2"))
    }

    @Test func duplicatesFromOldChainsAreRefusedAfterFiveRatchetSteps() throws {
        var (alice, bob, first) = try parties.start()
        _ = try bob.decrypt(first)
        var read = [first]                                      // one message from each of Alice's chains
        for round in 0..<5 {
            _ = try alice.decrypt(try bob.encrypt(Array("b\(round)")))
            let m = try alice.encrypt(Array("a\(round)"))
            _ = try bob.decrypt(m)
            read.append(m)
        }
        #expect(Set(read.map(\.header.ratchetKey)).count == 6)
        let before = RatchetSnapshot(bob)
        for m in read {
            #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try bob.decrypt(m) }
        }
        #expect(RatchetSnapshot(bob) == before)
    }

    /// §5.3: beyond the last 8 replaced remote ratchet keys, a duplicate fails authentication instead, and
    /// still changes nothing.
    @Test func replayFromAVeryOldChainIsStillRefused() throws {
        var (alice, bob, first) = try parties.start()
        _ = try bob.decrypt(first)
        for round in 0..<12 {
            _ = try alice.decrypt(try bob.encrypt(Array("b\(round)")))
            _ = try bob.decrypt(try alice.encrypt(Array("a\(round)")))
        }
        let before = RatchetSnapshot(bob)
        #expect(throws: ProtocolError.decryptionFailed) { try bob.decrypt(first) }
        #expect(RatchetSnapshot(bob) == before)
    }

    // MARK: Loss, direction, reordering

    @Test func lostMessagesDoNotBlockLaterOnes() throws {
        var (alice, bob) = try parties.established()
        let chain = try numbered(4, from: &alice)               // N = 1...4; only N = 2 arrives
        #expect(try bob.decrypt(chain[1]) == Array("N2"))
        _ = try alice.decrypt(try bob.encrypt(Array("reply")))
        _ = try bob.encrypt(Array("lost reply"))                // never delivered
        #expect(try bob.decrypt(try alice.encrypt(Array("later"))) == Array("later"))
        #expect(try alice.decrypt(try bob.encrypt(Array("bob later"))) == Array("bob later"))
        #expect(bob.exportSecretsForTesting().skippedKeyCount == 3)   // N = 1, 3, 4 of Alice's chain
        #expect(alice.exportSecretsForTesting().skippedKeyCount == 1) // Bob's lost reply
    }

    @Test func responderCannotEncryptBeforeReceiving() throws {
        var (_, bob, first) = try parties.start()
        let before = RatchetSnapshot(bob)
        #expect(!bob.canSend)
        #expect(throws: ProtocolError.self) { try bob.encrypt(Array("too early")) }
        #expect(RatchetSnapshot(bob) == before)
        _ = try bob.decrypt(first)
        #expect(bob.canSend)
        _ = try bob.encrypt(Array("now"))
    }

    @Test func outOfOrderAcrossSixRatchetSteps() throws {
        var (alice, bob, first) = try parties.start()
        _ = try bob.decrypt(first)
        var heldForBob: [RatchetMessage] = []
        var heldForAlice: [RatchetMessage] = []
        for round in 0..<6 {
            heldForBob.append(try alice.encrypt(Array("a\(round) held")))
            #expect(try bob.decrypt(try alice.encrypt(Array("a\(round)"))) == Array("a\(round)"))
            heldForAlice.append(try bob.encrypt(Array("b\(round) held")))
            #expect(try alice.decrypt(try bob.encrypt(Array("b\(round)"))) == Array("b\(round)"))
        }
        #expect(Set(heldForBob.map(\.header.ratchetKey)).count == 6)
        #expect(Set(heldForAlice.map(\.header.ratchetKey)).count == 6)
        for round in [5, 4, 3, 2, 1, 0] {
            #expect(try bob.decrypt(heldForBob[round]) == Array("a\(round) held"))
        }
        for round in [3, 0, 5, 1, 4, 2] {
            #expect(try alice.decrypt(heldForAlice[round]) == Array("b\(round) held"))
        }
        #expect(bob.exportSecretsForTesting().skippedKeyCount == 0)
        #expect(alice.exportSecretsForTesting().skippedKeyCount == 0)
    }
}
