import Testing
import ParleyCrypto
@testable import ParleyProtocol
import ParleyTestSupport

/// PROTOCOL.md §7: the envelope, and the checks the receiver makes on what it carries.
@Suite struct SealedSenderSpecTests {
    let world = TestWorld()
    let alice: [TestDevice]
    let bob: [TestDevice]

    init() {
        alice = world.account("alice@relay.test", devices: 2)
        bob = world.account("bob@relay.test", devices: 2)
        world.introduce(alice, bob)
    }

    /// Alice's device 1 sends `text`; returns the envelope addressed to Bob's device 1.
    private func aliceSends(_ text: String) async throws -> OutgoingEnvelope {
        try bob[0].envelope(in: try await alice[0].manager.send(Array(text), to: "bob@relay.test"))
    }

    /// What `envelope` carries, sealed again for Bob's device 1 with another certificate or message.
    private func resealed(_ envelope: OutgoingEnvelope, certificate: SenderCertificate? = nil,
                          message: SealedContent.Message? = nil) throws -> [UInt8] {
        let content = try bob[0].peek(envelope)
        return try SealedSender.seal(SealedContent(certificate: certificate ?? content.certificate, message: message ?? content.message),
                                     to: bob[0].account.device.publicKey)
    }

    /// A certificate for Alice's address signed by `signer` (Alice's account key unless given).
    private func certificate(claiming accountKey: Ed25519.PublicKey? = nil, signer: Ed25519.KeyPair? = nil,
                             deviceId: UInt32 = 1, deviceKey: Ed25519.PublicKey? = nil) -> SenderCertificate {
        let real = alice[0].account.certificate
        let key = accountKey ?? real.accountKey, device = deviceKey ?? real.deviceKey
        let body = SenderCertificate.encodeBody(address: real.address, accountKey: key, deviceId: deviceId, deviceKey: device,
                                                expiresAt: real.expiresAt)
        let signature = LabelledSignature.sign(body, label: ProtocolConstants.signatureSenderCertificate,
                                               with: signer ?? alice[0].account.accountKey)
        return SenderCertificate(address: real.address, accountKey: key, deviceId: deviceId, deviceKey: device,
                                 expiresAt: real.expiresAt, signature: signature)
    }

    /// Bob's device 1 has read nothing and holds no session with Alice.
    private var bobUntouched: Bool {
        bob[0].store.receivedLog.isEmpty && bob[0].store.deviceIdsWithSessions(of: "alice@relay.test").isEmpty
            && bob[0].store.preKeys().oneTimePreKeys.count == bob[0].preKeys.oneTimePreKeys.count
    }

    // MARK: The envelope

    @Test func envelopeLayoutAndRoundTrip() throws {
        var session = try Parties("sealed").established().alice
        let content = SealedContent(certificate: alice[0].account.certificate, message: .ratchet(try session.encrypt(Array("x"))))
        let envelope = try SealedSender.seal(content, to: bob[0].account.device.publicKey)
        #expect(envelope[0] == 0x01)
        // Inner is padded like a ratchet plaintext (§7), so the envelope is 0x01 ‖ E ‖ Pad(Inner) ‖ tag.
        #expect(envelope.count == 1 + 32 + Padding.pad(content.encoded).count + 16)
        #expect((envelope.count - 33 - 16) % 160 == 0)
        #expect(try SealedSender.open(envelope, identity: bob[0].account.device) == content)
    }

    @Test func onlyTheAddressedDeviceCanOpen() async throws {
        let envelope = try await aliceSends("for bob 1")
        for other in [bob[1], alice[1]] {
            #expect(throws: ProtocolError.decryptionFailed) { try SealedSender.open(envelope.envelope, identity: other.account.device) }
        }
        await #expect(throws: ProtocolError.decryptionFailed) { try await bob[1].manager.receive(envelope.envelope) }
        #expect(bob[1].store.receivedLog.isEmpty)
        #expect(try await bob[0].manager.receive(envelope.envelope).content == Array("for bob 1"))
    }

    @Test func everyChangedByteIsRefused() async throws {
        let envelope = try await aliceSends("tamper with me").envelope
        let accepted = envelope.indices.filter { i in
            errorThrown { _ = try SealedSender.open(flipping(envelope, at: i), identity: bob[0].account.device) } == nil
        }
        #expect(accepted.isEmpty, "changed bytes accepted at \(accepted)")
        await #expect(throws: ProtocolError.decryptionFailed) { try await bob[0].manager.receive(flipping(envelope, at: 40)) }
        #expect(bobUntouched)
    }

    @Test func envelopeWithAnotherVersionIsUnsupported() async throws {
        var envelope = try await aliceSends("v1 only").envelope
        envelope[0] = 0x02
        #expect(throws: ProtocolError.unsupportedVersion(structure: "Envelope", version: 2)) {
            try SealedSender.open(envelope, identity: bob[0].account.device)
        }
        await #expect(throws: ProtocolError.unsupportedVersion(structure: "Envelope", version: 2)) {
            try await bob[0].manager.receive(envelope)
        }
        #expect(bobUntouched)
    }

    @Test func envelopeSizeDependsOnlyOnThePaddingBucket() async throws {
        let one = try await aliceSends("x")
        let full = try await aliceSends(String(repeating: "y", count: 150))
        let longer = try await aliceSends(String(repeating: "z", count: 161))
        #expect(try bob[0].peek(one).message.isPreKey && bob[0].peek(full).message.isPreKey && bob[0].peek(longer).message.isPreKey)
        #expect(one.envelope.count == full.envelope.count)
        #expect(longer.envelope.count == one.envelope.count + 160)
    }

    // MARK: The sender certificate

    @Test func expiredCertificateIsRefused() async throws {
        let sent = try await aliceSends("late")
        let envelope = sent.envelope
        let expiresAt = try bob[0].peek(sent).certificate.expiresAt
        await #expect(throws: ProtocolError.senderCertificateExpired) {
            try await bob[0].manager(clock: FixedClock(now: expiresAt)).receive(envelope)
        }
        #expect(bobUntouched)
        let lastMoment = bob[0].manager(clock: FixedClock(now: expiresAt - 1))
        #expect(try await lastMoment.receive(envelope).content == Array("late"))
    }

    @Test func certificateNotSignedByTheAccountKeyIsRefused() async throws {
        let mallory = Ed25519.KeyPair(random: DeterministicRandom(label: "mallory"))
        let envelope = try await aliceSends("hello")
        let error = await #expect(throws: ProtocolError.self) {
            try await bob[0].manager.receive(try resealed(envelope, certificate: certificate(signer: mallory)))
        }
        #expect(error?.isBadSignature == true)
        #expect(bobUntouched)
    }

    /// Verified certificates are remembered by their exact bytes: a known one still expires, and one that
    /// differs from a known one in any byte (here: the signature) is verified afresh and refused.
    @Test func rememberedCertificatesStillExpireAndOnlyExactCopiesAreRecognised() throws {
        let real = alice[0].account.certificate
        try real.verify(now: real.expiresAt - 1)
        #expect(throws: ProtocolError.senderCertificateExpired) { try real.verify(now: real.expiresAt) }
        var signature = real.signature
        signature[5] ^= 0x01
        let tampered = SenderCertificate(address: real.address, accountKey: real.accountKey, deviceId: real.deviceId,
                                         deviceKey: real.deviceKey, expiresAt: real.expiresAt, signature: signature)
        let error = #expect(throws: ProtocolError.self) { try tampered.verify(now: real.expiresAt - 1) }
        #expect(error?.isBadSignature == true)
        let mallory = Ed25519.KeyPair(random: DeterministicRandom(label: "mallory"))
        let forgedError = #expect(throws: ProtocolError.self) { try certificate(signer: mallory).verify(now: real.expiresAt - 1) }
        #expect(forgedError?.isBadSignature == true)
    }

    /// The cache itself (a fresh one: the shared ones are used by tests running in parallel): exact bytes
    /// only, emptied when full.
    @Test func boundedCacheIsExactAndBounded() {
        let cache = BoundedCache<Int>(capacity: 8)
        cache.store(1, for: [1, 2, 3])
        #expect(cache[[1, 2, 3]] == 1)
        #expect(cache[[1, 2, 4]] == nil && cache[[1, 2]] == nil)
        for i in 0..<7 { cache.store(i, for: [9, UInt8(i)]) }
        #expect(cache[[1, 2, 3]] == 1, "eight entries fit")
        cache.store(0, for: [7])
        #expect(cache[[1, 2, 3]] == nil && cache[[7]] == 0, "emptied when it reached its capacity, then the new one kept")
    }

    @Test func certificateUnderAnotherAccountKeyIsAnIdentityChange() async throws {
        let mallory = Ed25519.KeyPair(random: DeterministicRandom(label: "mallory"))
        let envelope = try await aliceSends("hello")
        let forged = certificate(claiming: mallory.publicKey, signer: mallory)
        try forged.verify(now: world.clock.now)                  // valid in itself
        await #expect(throws: ProtocolError.identityChanged(address: "alice@relay.test")) {
            try await bob[0].manager.receive(try resealed(envelope, certificate: forged))
        }
        #expect(bobUntouched)
    }

    @Test func certificateForADeviceNotInTheVerifiedListIsRefused() async throws {
        let envelope = try await aliceSends("hello")
        let stranger = Ed25519.KeyPair(random: DeterministicRandom(label: "stranger")).publicKey
        let forged = [certificate(deviceId: 3, deviceKey: stranger),            // unknown id
                      certificate(deviceId: 2, deviceKey: alice[0].account.device.publicKey)] // id 2 with device 1's key
        for certificate in forged {
            await #expect(throws: ProtocolError.unknownDevice(address: "alice@relay.test", deviceId: certificate.deviceId)) {
                try await bob[0].manager.receive(try resealed(envelope, certificate: certificate))
            }
        }
        #expect(bobUntouched)
    }

    /// Alice's device 1 starts a session, but the envelope carries the (genuine) certificate of her device 2.
    @Test func certificateOfAnotherDeviceOnASessionStartIsRefused() async throws {
        let envelope = try await aliceSends("from device 1")
        let error = await #expect(throws: ProtocolError.self) {
            try await bob[0].manager.receive(try resealed(envelope, certificate: alice[1].account.certificate))
        }
        #expect(error?.isSenderMismatch == true)
        #expect(bobUntouched)
        #expect(try await bob[0].manager.receive(envelope.envelope).content == Array("from device 1"))
    }

    /// Bob's device 1 has sessions with both of Alice's devices; a message of device 1's session under
    /// device 2's certificate does not decrypt in device 2's sessions, and changes nothing.
    @Test func certificateOfAnotherDeviceOnAnEstablishedSessionIsRefused() async throws {
        for envelope in try await alice[0].manager.send(Array("start"), to: "bob@relay.test") {
            try await (alice + bob).first { $0.address == envelope.recipient }!.manager.receive(envelope.envelope)
        }
        for envelope in try await bob[0].manager.send(Array("reply"), to: "alice@relay.test") {
            try await (alice + bob).first { $0.address == envelope.recipient }!.manager.receive(envelope.envelope)
        }
        #expect(bob[0].store.deviceIdsWithSessions(of: "alice@relay.test") == [1, 2])
        let envelope = try await aliceSends("established")
        #expect(try !bob[0].peek(envelope).message.isPreKey)

        let sessions = [1, 2].map { bob[0].store.sessions(for: DeviceAddress(address: "alice@relay.test", deviceId: $0)) }
        await #expect(throws: ProtocolError.self) {
            try await bob[0].manager.receive(try resealed(envelope, certificate: alice[1].account.certificate))
        }
        for (i, before) in sessions.enumerated() {
            let after = bob[0].store.sessions(for: DeviceAddress(address: "alice@relay.test", deviceId: UInt32(i + 1)))
            #expect(after.active.map(RatchetSnapshot.init) == before.active.map(RatchetSnapshot.init))
            #expect(after.inactive.count == before.inactive.count)
        }
        #expect(bob[0].store.receivedLog.count == 1)
        #expect(try await bob[0].manager.receive(envelope.envelope).content == Array("established"))
    }

    /// A PreKeyMessage from another identity key, wrapped in Alice's genuine certificate.
    @Test func preKeyMessageWhoseIdentityDiffersFromTheCertificateIsRefused() async throws {
        let random = DeterministicRandom(label: "mallory device")
        let mallory = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair(random: random))
        let bundle = bob[0].store.preKeys().bundle(identity: bob[0].account.device)
        let initiation = try PQXDH.initiate(identity: mallory, bundle: bundle, random: random)
        var session = try RatchetSession.initiator(initiation, localIdentity: mallory.publicKey, bundle: bundle, random: random)
        let start = PreKeyMessage(preKey: initiation.header, message: try session.encrypt(Padding.pad(Array("it's me, alice"))))
        let envelope = try SealedSender.seal(SealedContent(certificate: alice[0].account.certificate, message: .preKey(start)),
                                             to: bob[0].account.device.publicKey)
        let error = await #expect(throws: ProtocolError.self) { try await bob[0].manager.receive(envelope) }
        #expect(error?.isSenderMismatch == true)
        #expect(bobUntouched)
    }
}
