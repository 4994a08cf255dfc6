import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// A blocked contact's session starts are refused (#24, feature 3): their PreKeyMessage creates no session,
/// uses no prekey and stores nothing; after unblocking, their next message starts a session as usual.
@Suite("Blocking refuses a contact's new sessions")
struct BlockedSessionTests {
    @Test("a PreKeyMessage from a blocked contact leaves the store as it was, and is acknowledged")
    func blockedSessionStartChangesNothing() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            _ = try await Operations(engine: bob.engine).setBlocked([aliceAddress], true)
            let preKeysBefore = try bob.store.preKeys()

            // Alice has no session with Bob: her message starts one (a PreKeyMessage).
            try await alice.engine.send(text: "let me in", to: bobAddress)
            let events = try await bob.engine.receivePending()
            #expect(!events.contains { if case .message = $0 { true } else { false } })
            #expect(try bob.store.deviceIdsWithSessions(of: aliceAddress).isEmpty)
            let preKeysAfter = try bob.store.preKeys()
            #expect(Set(preKeysAfter.oneTimePreKeys.keys) == Set(preKeysBefore.oneTimePreKeys.keys))
            #expect(Set(preKeysAfter.oneTimePQPreKeys.keys) == Set(preKeysBefore.oneTimePQPreKeys.keys))
            #expect(try bob.history(with: aliceAddress).isEmpty)
            // Acknowledged: nothing comes back.
            #expect(try await bob.engine.receivePending().isEmpty)

            _ = try await Operations(engine: bob.engine).setBlocked([aliceAddress], false)
            try await alice.engine.send(text: "now?", to: bobAddress)
            _ = try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["now?"])
            #expect(try bob.store.deviceIdsWithSessions(of: aliceAddress) == [1])
        }
    }
}
