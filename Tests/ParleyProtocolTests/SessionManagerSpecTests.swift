import Testing
import ParleyCrypto
@testable import ParleyProtocol

private let aliceAddress: AccountAddress = "alice@relay.test"
private let bobAddress: AccountAddress = "bob@relay.test"

/// Hands each envelope to the device it names; returns what each read, in order.
@discardableResult
private func deliverAll(_ envelopes: [OutgoingEnvelope], to devices: [TestDevice]) async throws -> [(DeviceAddress, [UInt8])] {
    var read: [(DeviceAddress, [UInt8])] = []
    for envelope in envelopes {
        let device = try #require(devices.first { $0.address == envelope.recipient })
        read.append((envelope.recipient, try await device.manager.receive(envelope.envelope).content))
    }
    return read
}

/// Serves one fixed bundle for every device.
private struct FixedBundleSource: PreKeyBundleSource {
    let served: PreKeyBundle
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle { served }
}

/// PROTOCOL.md §8: fan-out, device-list changes, PreKeyMessages until the first reply, prekey consumption,
/// the inactive-session limit and the trust checks on received messages.
@Suite struct SessionManagerSpecTests {
    let world = TestWorld()

    /// One device each, introduced to each other.
    private func pair() -> (alice: TestDevice, bob: TestDevice) {
        let alice = world.account(aliceAddress), bob = world.account(bobAddress)
        world.introduce(alice, bob)
        return (alice[0], bob[0])
    }

    // MARK: Fan-out

    @Test func fanOutWithTwoDevicesOnEachSide() async throws {
        let alice = world.account(aliceAddress, devices: 2), bob = world.account(bobAddress, devices: 2)
        world.introduce(alice, bob)
        let fromAlice = try await alice[0].manager.send(Array("from alice 1"), to: bobAddress)
        #expect(fromAlice.count == 3 && Set(fromAlice.map(\.recipient)) == [bob[0].address, bob[1].address, alice[1].address])
        let fromBob = try await bob[1].manager.send(Array("from bob 2"), to: aliceAddress)
        #expect(fromBob.count == 3 && Set(fromBob.map(\.recipient)) == [alice[0].address, alice[1].address, bob[0].address])

        let read = try await deliverAll(fromAlice + fromBob, to: alice + bob)
        #expect(read.count == 6)
        #expect(read.prefix(3).allSatisfy { $0.1 == Array("from alice 1") })
        #expect(read.suffix(3).allSatisfy { $0.1 == Array("from bob 2") })
        #expect(alice[0].store.deviceIdsWithSessions(of: bobAddress) == [1, 2])
        #expect(alice[0].store.deviceIdsWithSessions(of: aliceAddress) == [2])
    }

    /// Sending to one's own account reaches only the account's other devices.
    @Test func noteToSelfReachesOnlyTheOtherOwnDevices() async throws {
        let alice = world.account(aliceAddress, devices: 3)
        let envelopes = try await alice[0].manager.send(Array("note to self"), to: aliceAddress)
        #expect(envelopes.map(\.recipient) == [alice[1].address, alice[2].address])
        let read = try await deliverAll(envelopes, to: alice)
        #expect(read.allSatisfy { $0.1 == Array("note to self") })
    }

    // MARK: Device lists

    @Test func deviceListChangeRetiresRemovedDevicesAndReachesNewOnes() async throws {
        let alice = world.account(aliceAddress), bob = world.account(bobAddress, devices: 2)
        world.introduce(alice, bob)
        _ = try await alice[0].manager.send(Array("before"), to: bobAddress)
        #expect(alice[0].store.deviceIdsWithSessions(of: bobAddress) == [1, 2])

        let (bob3, v2) = world.addDevice(3, to: bob, keeping: [bob[0]], version: 2)
        try await alice[0].manager.updateDeviceList(v2, for: bobAddress)
        #expect(alice[0].store.deviceIdsWithSessions(of: bobAddress) == [1])

        let after = try await alice[0].manager.send(Array("after"), to: bobAddress)
        #expect(Set(after.map(\.recipient)) == [bob[0].address, bob3.address])
        #expect(try await bob3.manager.receive(bob3.envelope(in: after).envelope).content == Array("after"))
        #expect(alice[0].store.deviceIdsWithSessions(of: bobAddress) == [1, 3])
    }

    @Test func deviceListRollbackIsRefused() async throws {
        let alice = world.account(aliceAddress), bob = world.account(bobAddress, devices: 2)
        world.introduce(alice, bob)
        let (bob3, v2) = world.addDevice(3, to: bob, keeping: bob, version: 2)
        try await alice[0].manager.updateDeviceList(v2, for: bobAddress)
        await #expect(throws: ProtocolError.deviceListRollback(known: 2, offered: 1)) {
            try await alice[0].manager.updateDeviceList(bob[0].account.deviceList, for: bobAddress)
        }
        #expect(alice[0].store.account(bobAddress)?.deviceList == v2)
        let envelopes = try await alice[0].manager.send(Array("still three"), to: bobAddress)
        #expect(Set(envelopes.map(\.recipient)) == [bob[0].address, bob[1].address, bob3.address])
    }

    @Test func deviceListUnderAnotherAccountKeyIsAnIdentityChange() async throws {
        let (alice, bob) = pair()
        let impostor = world.account(bobAddress, seed: "bob impostor")
        await #expect(throws: ProtocolError.identityChanged(address: bobAddress.description)) {
            try await alice.manager.updateDeviceList(impostor[0].account.deviceList, for: bobAddress)
        }
        #expect(alice.store.account(bobAddress)?.accountKey == bob.account.accountKey.publicKey)
    }

    /// §3.3: an initiator refuses a bundle whose DIK is not in the account's verified device list.
    @Test func bundleOfADeviceOutsideTheListIsRefused() async throws {
        let (alice, _) = pair()
        let stranger = Parties("stranger")
        let sender = SessionManager(account: alice.account, store: alice.store, bundles: FixedBundleSource(served: stranger.bundle()),
                                    clock: world.clock)
        let error = await #expect(throws: ProtocolError.self) { try await sender.send(Array("hi"), to: bobAddress) }
        #expect(error?.isSenderMismatch == true)
        #expect(alice.store.deviceIdsWithSessions(of: bobAddress).isEmpty && alice.store.outbox.isEmpty)
    }

    // MARK: Session start

    @Test func preKeyMessagesRideAlongUntilTheFirstReplyDecrypts() async throws {
        let (alice, bob) = pair()
        for (text, starts) in [("one", true), ("two", false)] {
            let envelope = try bob.envelope(in: try await alice.manager.send(Array(text), to: bobAddress))
            #expect(try bob.peek(envelope).message.isPreKey)
            #expect(try await bob.manager.receive(envelope.envelope).startedSession == starts)
        }
        _ = try await bob.manager.send(Array("lost reply"), to: aliceAddress)       // never delivered
        let three = try bob.envelope(in: try await alice.manager.send(Array("three"), to: bobAddress))
        #expect(try bob.peek(three).message.isPreKey)
        try await bob.manager.receive(three.envelope)

        let reply = try alice.envelope(in: try await bob.manager.send(Array("reply"), to: aliceAddress))
        #expect(try !alice.peek(reply).message.isPreKey)
        #expect(alice.store.sessions(for: bob.address).active?.pendingPreKey != nil)
        #expect(try await alice.manager.receive(reply.envelope).content == Array("reply"))
        #expect(alice.store.sessions(for: bob.address).active?.pendingPreKey == nil)

        let four = try bob.envelope(in: try await alice.manager.send(Array("four"), to: bobAddress))
        #expect(try !bob.peek(four).message.isPreKey)
        #expect(try await bob.manager.receive(four.envelope).content == Array("four"))
    }

    @Test func oneTimePreKeysAreConsumedAndAReplayedStartIsRefused() async throws {
        let (alice, bob) = pair()
        let envelope = try bob.envelope(in: try await alice.manager.send(Array("hello"), to: bobAddress))
        guard case .preKey(let start) = try bob.peek(envelope).message else { Issue.record("not a PreKeyMessage"); return }
        let opk = start.preKey.oneTimePreKeyId, pq = start.preKey.pqPreKeyId
        #expect(opk != 0 && start.preKey.pqKind == .oneTime)
        let keysBefore = bob.store.preKeys()
        #expect(keysBefore.oneTimePreKeys[opk] != nil && keysBefore.oneTimePQPreKeys[pq] != nil)

        #expect(try await bob.manager.receive(envelope.envelope).startedSession)
        let keysAfter = bob.store.preKeys()
        #expect(keysAfter.oneTimePreKeys[opk] == nil && keysAfter.oneTimePQPreKeys[pq] == nil)
        #expect(keysAfter.oneTimePreKeys.count == keysBefore.oneTimePreKeys.count - 1)
        #expect(keysAfter.oneTimePQPreKeys.count == keysBefore.oneTimePQPreKeys.count - 1)

        let session = RatchetSnapshot(try #require(bob.store.sessions(for: alice.address).active))
        await #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try await bob.manager.receive(envelope.envelope) }
        #expect(RatchetSnapshot(try #require(bob.store.sessions(for: alice.address).active)) == session)
        #expect(bob.store.sessions(for: alice.address).inactive.isEmpty)
        #expect(bob.store.receivedLog.count == 1)
    }

    /// §4: one-time prekeys are deleted only once a message decrypts, so a forged start cannot burn them.
    @Test func forgedSessionStartDoesNotBurnOneTimePreKeys() async throws {
        let (alice, bob) = pair()
        let envelope = try bob.envelope(in: try await alice.manager.send(Array("hello"), to: bobAddress))
        let content = try bob.peek(envelope)
        guard case .preKey(let start) = content.message else { Issue.record("not a PreKeyMessage"); return }
        let broken = RatchetMessage(header: start.message.header, ciphertext: flipping(start.message.ciphertext, at: 3))
        let forged = try SealedSender.seal(SealedContent(certificate: content.certificate,
                                                         message: .preKey(PreKeyMessage(preKey: start.preKey, message: broken))),
                                           to: bob.account.device.publicKey)
        await #expect(throws: ProtocolError.decryptionFailed) { try await bob.manager.receive(forged) }
        #expect(bob.store.preKeys().oneTimePreKeys[start.preKey.oneTimePreKeyId] != nil)
        #expect(bob.store.preKeys().oneTimePQPreKeys[start.preKey.pqPreKeyId] != nil)
        #expect(bob.store.sessions(for: alice.address).isEmpty)
        #expect(try await bob.manager.receive(envelope.envelope).content == Array("hello"))
    }

    @Test func inactiveSessionsNeverExceedFive() async throws {
        let (alice, bob) = pair()
        for round in 1...8 {
            alice.forgetSessions(with: bob.address)              // Alice starts over, as after a reinstall
            let envelope = try bob.envelope(in: try await alice.manager.send(Array("restart \(round)"), to: bobAddress))
            #expect(try await bob.manager.receive(envelope.envelope).startedSession)
            #expect(bob.store.sessions(for: alice.address).inactive.count == min(round - 1, ProtocolConstants.maxInactiveSessions))
        }
        let reply = try alice.envelope(in: try await bob.manager.send(Array("reply"), to: aliceAddress))
        #expect(try await alice.manager.receive(reply.envelope).content == Array("reply"))
    }

    /// §8: a message on an inactive session makes it active again; the displaced one becomes the newest inactive one.
    @Test func aSessionThatDecryptsBecomesActive() async throws {
        let (alice, bob) = pair()
        let old = try bob.envelope(in: try await alice.manager.send(Array("old session"), to: bobAddress))
        let late = try bob.envelope(in: try await alice.manager.send(Array("late on old session"), to: bobAddress))
        try await bob.manager.receive(old.envelope)
        alice.forgetSessions(with: bob.address)
        try await bob.manager.receive(try bob.envelope(in: try await alice.manager.send(Array("new"), to: bobAddress)).envelope)
        let newActive = RatchetSnapshot(try #require(bob.store.sessions(for: alice.address).active))

        #expect(try await bob.manager.receive(late.envelope).content == Array("late on old session"))
        let sessions = bob.store.sessions(for: alice.address)
        #expect(sessions.inactive.count == 1)
        #expect(RatchetSnapshot(sessions.inactive[0]) == newActive)
    }

    // MARK: Trust

    @Test func unknownSenderIsRefusedUnderTheRefusePolicy() async throws {
        let alice = world.account(aliceAddress)[0], bob = world.account(bobAddress)[0]
        alice.store.setAccount(KnownAccount(accountKey: bob.account.accountKey.publicKey, deviceList: bob.account.deviceList), for: bobAddress)
        let first = try bob.envelope(in: try await alice.manager.send(Array("hi"), to: bobAddress))
        let strict = bob.manager(clock: world.clock, policy: .refuse)
        await #expect(throws: ProtocolError.identityChanged(address: aliceAddress.description)) { try await strict.receive(first.envelope) }
        #expect(bob.store.account(aliceAddress) == nil)
        #expect(bob.store.sessions(for: alice.address).isEmpty && bob.store.receivedLog.isEmpty)

        // Trusted on first use, the same sender then passes the strict policy too.
        #expect(try await bob.manager.receive(first.envelope).content == Array("hi"))
        let second = try bob.envelope(in: try await alice.manager.send(Array("again"), to: bobAddress))
        #expect(try await strict.receive(second.envelope).content == Array("again"))
    }

    @Test func senderWhoseAccountKeyChangedIsRefused() async throws {
        let (alice, bob) = pair()
        let reinstalled = world.account(aliceAddress, seed: "alice with a new account key")[0]
        reinstalled.store.setAccount(KnownAccount(accountKey: bob.account.accountKey.publicKey, deviceList: bob.account.deviceList),
                                     for: bobAddress)
        let envelope = try bob.envelope(in: try await reinstalled.manager.send(Array("it's me"), to: bobAddress))
        await #expect(throws: ProtocolError.identityChanged(address: aliceAddress.description)) { try await bob.manager.receive(envelope.envelope) }
        #expect(bob.store.account(aliceAddress)?.accountKey == alice.account.accountKey.publicKey)
        #expect(bob.store.sessions(for: alice.address).isEmpty && bob.store.receivedLog.isEmpty)
    }
}
