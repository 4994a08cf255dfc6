import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore

/// A SessionManager on two real encrypted stores.
@Suite struct SessionAtomicityTests {
    let world = StoreWorld()

    private func pair() throws -> (alice: Device, bob: Device) {
        let alice = try world.device("alice@relay.test"), bob = try world.device("bob@relay.test")
        try world.introduce(alice, bob)
        return (alice, bob)
    }

    @Test func receiveCommitsMessageSessionAndPreKeysTogether() async throws {
        let (alice, bob) = try pair()
        let envelopes = try await alice.manager.send(textContent("hello bob", to: "bob@relay.test", id: 1), to: "bob@relay.test")
        #expect(envelopes.map(\.recipient) == [bob.address])
        #expect(try alice.store.outbox().map(\.envelope) == envelopes)  // committed with Alice's session
        #expect(try alice.store.sessions(for: bob.address).active != nil)

        let preKeysBefore = try bob.store.preKeys()
        let received = try await bob.manager.receive(envelopes[0].envelope)

        // Exactly one commit, holding the message, the new session and the consumed prekeys...
        let commits = bob.recorder.commits
        #expect(commits.count == 1)
        #expect(commits.first?.received == received)
        #expect(commits.first?.sessions[alice.address]?.active != nil)
        #expect(commits.first?.preKeys != nil)
        // ...and all of it is in the store.
        #expect(try bob.store.inbox().map(\.message) == [received])
        #expect(try bob.store.sessions(for: alice.address).active?.remoteIdentityKey == alice.account.device.publicKey)
        #expect(try bob.store.preKeys().oneTimePreKeys.count == preKeysBefore.oneTimePreKeys.count - 1)
        #expect(try bob.store.preKeys().oneTimePQPreKeys.count == preKeysBefore.oneTimePQPreKeys.count - 1)
        #expect(try record(of: received).text == "hello bob")

        // A later message advances the stored session in the same commit as its inbox entry.
        let sessionBefore = try bob.store.sessions(for: alice.address).serialized()
        let second = try await exchange("again", from: alice, to: bob, id: 2)
        #expect(bob.recorder.commits.count == 2)
        #expect(try bob.store.inbox().map(\.message).last == second)
        #expect(try bob.store.sessions(for: alice.address).serialized() != sessionBefore)
    }

    /// A page received by the client engine is filed into history in the commit that stores its sessions:
    /// nothing passes through the inbox, and a repeated message (same sender and client message id) is
    /// recognised in the same transaction.
    @Test func receiveFiledInItsOwnCommit() async throws {
        let (alice, bob) = try pair()
        let envelope = try await alice.manager.send(textContent("filed at once", to: "bob@relay.test", id: 7), to: "bob@relay.test")[0]
        let store = bob.store
        let filed = try await bob.manager.receive(batch: [envelope.envelope]) { changes in
            try store.commit(changes, filing: try changes.allReceived.map { InboxFiling(inboxId: nil, message: try record(of: $0)) },
                             ownAddress: "bob@relay.test")
        }
        #expect(filed.committed?.map { $0?.text } == ["filed at once"])
        #expect(try bob.store.inbox().isEmpty)
        #expect(try bob.store.messages(with: "alice@relay.test").map(\.text) == ["filed at once"])

        // The same content sent again (a sender retrying after a crash re-encrypts it): not stored twice.
        let again = try await alice.manager.send(textContent("filed at once", to: "bob@relay.test", id: 7), to: "bob@relay.test")[0]
        let repeated = try await bob.manager.receive(batch: [again.envelope]) { changes in
            try store.commit(changes, filing: try changes.allReceived.map { InboxFiling(inboxId: nil, message: try record(of: $0)) },
                             ownAddress: "bob@relay.test")
        }
        #expect(repeated.committed?.count == 1 && repeated.committed?[0] == nil)
        #expect(try bob.store.messages(with: "alice@relay.test").count == 1)
    }

    @Test func failedReceiveChangesNothing() async throws {
        let (alice, bob) = try pair()
        for (index, text) in ["starts the session", "uses the session"].enumerated() {
            let envelope = try await alice.manager.send(textContent(text, to: "bob@relay.test", id: UInt8(index)), to: "bob@relay.test")[0]
            var tampered = envelope.envelope
            tampered[tampered.count - 20] ^= 0x01
            let before = try dump(bob.path)
            let preKeysBefore = try bob.store.preKeys().serialized()

            await #expect(throws: (any Error).self) { try await bob.manager.receive(tampered) }
            #expect(try dump(bob.path) == before)
            #expect(try bob.store.preKeys().serialized() == preKeysBefore)
            #expect(try bob.store.inbox().count == index)
            #expect(bob.recorder.commits.count == index)

            // The genuine envelope still goes through afterwards.
            #expect(try record(of: try await bob.manager.receive(envelope.envelope)).text == text)
        }
    }

    private func state(_ store: EncryptedStore, peer: DeviceAddress) throws -> [[UInt8]] {
        [try #require(try store.localAccount()).serialized(), try store.preKeys().serialized(),
         try store.sessions(for: peer).serialized()]
            + (try store.inbox().map { RecordCodec.encode($0.message) })
            + (try store.contacts().map { $0.serialized() })
    }

    /// Bob's first life: a conversation with Alice, then his store is closed. Returns its path and state.
    private func bobsFirstLife(with alice: Device) async throws -> (path: String, state: [[UInt8]]) {
        let bob = try world.device("bob@relay.test")
        try world.introduce(alice, bob)
        try await exchange("one", from: alice, to: bob, id: 1)
        try await exchange("two", from: bob, to: alice, id: 2)
        try await exchange("three", from: alice, to: bob, id: 3)
        #expect(try bob.store.inbox().count == 2)
        world.bundles.forget(bob.address)
        return (bob.path, try state(bob.store, peer: alice.address))
    }

    @Test func reopenedStoreHasTheSameStateAndCarriesOn() async throws {
        let alice = try world.device("alice@relay.test")
        let (path, before) = try await bobsFirstLife(with: alice)
        #expect(!fileExists(path + "-wal"))  // closed and checkpointed

        let bob = world.attach(try openStore(path))
        #expect(try state(bob.store, peer: alice.address) == before)
        try await exchange("four", from: alice, to: bob, id: 4)
        try await exchange("five", from: bob, to: alice, id: 5)
        #expect(try bob.store.inbox().map { try record(of: $0.message).text } == ["one", "three", "four"])
        #expect(try alice.store.inbox().map { try record(of: $0.message).text } == ["two", "five"])
    }

    @Test func duplicateEnvelopeIsRefusedAndRepeatedContentFiledOnce() async throws {
        let (alice, bob) = try pair()
        let content = textContent("only once", to: "bob@relay.test", id: 42)
        let first = try await alice.manager.send(content, to: "bob@relay.test")[0]
        try await bob.manager.receive(first.envelope)
        await #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try await bob.manager.receive(first.envelope) }
        #expect(try bob.store.inbox().count == 1)

        // The sender retries the same content (same client message id) in a new envelope.
        let retry = try await alice.manager.send(content, to: "bob@relay.test")[0]
        try await bob.manager.receive(retry.envelope)
        await #expect(throws: ProtocolError.duplicateOrReplayedMessage) { try await bob.manager.receive(retry.envelope) }

        let inbox = try bob.store.inbox()
        #expect(inbox.count == 2)
        let ids = try inbox.map { entry in try bob.store.file(inboxEntry: entry.id, as: try record(of: entry.message)) }
        #expect(ids[0] != nil && ids[1] == nil)
        #expect(try bob.store.inbox().isEmpty)
        #expect(try bob.store.messageCount() == 1)
        #expect(try bob.store.messages(with: "alice@relay.test").map(\.text) == ["only once"])
    }
}
