import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// Contacts as people (#24, feature 3), through the operations the CLI, the daemon and the chat window share,
/// against real relays on loopback: nicknames and short names, removal, blocking.
@Suite("Contacts as people: nicknames, short names, removal, blocking")
struct ContactsAsPeopleTests {
    @Test("a blocked contact's message is dropped before it is stored and acknowledged; an unblocked one's arrives")
    func blockingDropsAndUnblockingLetsThrough() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let bobs = Operations(engine: bob.engine)
            try await alice.engine.send(text: "before", to: bobAddress)
            _ = try await bob.engine.receivePending()

            // "alice" is the local part of one contact's address: a short name.
            let blocked = try await bobs.setBlocked([try bobs.resolve("alice")], true)
            #expect(blocked.map(\.address) == [aliceAddress.description] && blocked.allSatisfy(\.isBlocked))
            #expect(try bobs.contacts().first { $0.address == aliceAddress.description }?.isBlocked == true)

            try await alice.engine.send(text: "while blocked", to: bobAddress)
            let whileBlocked = try await bob.engine.receivePending()
            #expect(!whileBlocked.contains { if case .message = $0 { true } else { false } })
            let conversation = ConversationId.direct(aliceAddress)
            #expect(try bob.engine.messages(in: conversation, limit: 50).map(\.text) == ["before"])
            // Acknowledged: the mailbox is empty, so the next drain brings nothing back.
            #expect(try await bob.engine.receivePending().isEmpty)
            // Sending to them is refused with a reason, and nothing is kept.
            await #expect(throws: ClientError.blocked(aliceAddress)) {
                try await bobs.send(.init(recipients: [try bobs.resolve("alice")], text: "no"))
            }
            #expect(try bob.engine.messages(in: conversation, limit: 50).map(\.text) == ["before"])
            #expect(ErrorCategory.of(ClientError.blocked(aliceAddress)) == .userError)

            _ = try await bobs.setBlocked([aliceAddress], false)
            try await alice.engine.send(text: "after", to: bobAddress)
            let after = try await bob.engine.receivePending()
            #expect(after.contains { if case .message(let m) = $0 { m.text == "after" } else { false } })
            #expect(try bob.engine.messages(in: conversation, limit: 50).map(\.text) == ["before", "after"])
            _ = try await bobs.send(.init(recipients: [try bobs.resolve("alice")], text: "welcome back"))
        }
    }

    @Test("a nickname is neutralised, listed, resolves a send, and cannot be taken twice or look like an address")
    func nicknames() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let alices = Operations(engine: alice.engine)
            let renamed = try await alices.renameContact(bobAddress, to: "  Bob\u{1B}]0;pwned\u{07}\u{202E}by\n  "
                                                         + String(repeating: "x", count: 100))
            #expect(renamed.name == "Bob]0;pwnedby " + String(repeating: "x", count: PeerText.nameLimit - 14))
            #expect(renamed.name.count == PeerText.nameLimit)
            #expect(!renamed.name.unicodeScalars.contains(where: PeerText.isDangerous))

            let short = try await alices.renameContact(bobAddress, to: "Bobby")
            #expect(short.name == "Bobby" && alices.shownName(of: bobAddress) == "Bobby")
            #expect(try alices.contacts().map(\.name) == ["Bobby"])
            let sent = try await alices.send(.init(recipients: [try alices.resolve("bobby")], text: "by nickname"))
            #expect(sent.results.map(\.recipient) == [bobAddress.description])
            _ = try await bob.engine.receivePending()
            #expect(try bob.engine.messages(in: .direct(aliceAddress), limit: 5).map(\.text) == ["by nickname"])

            await #expect(throws: OperationError.self) { try await alices.renameContact(bobAddress, to: "bob@elsewhere") }
            let carol = try await TestDevice.create("carol", on: relay, in: directory)
            let carolAddress = await carol.address
            _ = try await alices.addContact(carolAddress)
            await #expect(throws: OperationError.self) { try await alices.renameContact(carolAddress, to: "BOBBY") }
            #expect(try alice.engine.contact(carolAddress)?.nickname == "")
            // An empty name removes the nickname: the address is shown again.
            _ = try await alices.renameContact(try alices.resolve("bobby"), to: "")
            #expect(alices.shownName(of: bobAddress) == bobAddress.description)
        }
    }

    @Test("a short name two contacts share is refused, naming both")
    func ambiguousShortName() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let elsewhere = try TemporaryDirectory()
            try await withRelay(in: elsewhere) { other, otherDirectory in
                let otherBob = try await TestDevice.create("bob", on: other, in: otherDirectory)
                let otherBobAddress = await otherBob.address
                let alices = Operations(engine: alice.engine)
                _ = try await alices.addContact(otherBobAddress)
                do {
                    _ = try await alices.send(.init(recipients: [try alices.resolve("bob")], text: "which one?"))
                    Issue.record("an ambiguous short name was accepted")
                } catch let error as OperationError {
                    #expect(error.description.contains(bobAddress.description) && error.description.contains(otherBobAddress.description), "\(error)")
                    #expect(error.category == .userError)
                }
                #expect(try alice.engine.messages(in: .direct(bobAddress), limit: 5).isEmpty)
                // The full address still works, and so does a nickname.
                _ = try await alices.renameContact(otherBobAddress, to: "Robert")
                #expect(try alices.resolve("robert") == otherBobAddress)
            }
        }
    }

    @Test("a send by short name is checked against the policy on the address it resolves to")
    func policyOnResolvedAddress() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            var policy = Policy()
            policy.requireVerified = true
            let alices = Operations(engine: alice.engine, policy: policy)
            _ = try await alices.renameContact(bobAddress, to: "Bobby")
            for name in ["bobby", "bob"] {
                let refused = await #expect(throws: PolicyError.self) {
                    try await alices.send(.init(recipients: [try alices.resolve(name)], text: "hi"))
                }
                #expect(refused?.description.contains("parley verify \(bobAddress)") == true, "\(String(describing: refused))")
            }
            #expect(try alice.engine.messages(in: .direct(bobAddress), limit: 5).isEmpty)
        }
    }

    @Test("removing a contact forgets it and its sessions, and keeps the conversation's history")
    func removal() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "hello", to: bobAddress)
            _ = try await bob.engine.receivePending()
            let alices = Operations(engine: alice.engine)
            let device = DeviceAddress(address: bobAddress.description, deviceId: 1)
            #expect(try alice.store.sessions(for: device).active != nil)

            let removed = try await alices.removeContact(try alices.resolve("bob"))
            #expect(removed.address == bobAddress.description && removed.sessionsRemoved && removed.historyKept)
            #expect(try alice.engine.contact(bobAddress) == nil)
            #expect(try alice.store.sessions(for: device).active == nil)
            #expect(try alice.engine.messages(in: .direct(bobAddress), limit: 5).map(\.text) == ["hello"])
            await #expect(throws: ClientError.unknownContact(bobAddress)) { try await alices.removeContact(bobAddress) }
            await #expect(throws: ClientError.unknownContact(bobAddress)) { try await alices.send(.init(recipients: [bobAddress], text: "x")) }
            _ = aliceAddress
        }
    }
}
