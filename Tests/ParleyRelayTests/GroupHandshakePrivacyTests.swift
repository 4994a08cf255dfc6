import Foundation
@testable import ParleyClient
import ParleyCrypto
@testable import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyTestSupport
import Testing

/// Commits and proposals travel as MLS PrivateMessages (PROTOCOL.md §17.4): the relay orders and stores
/// them without reading who made them or what they add and remove. A PrivateMessage commit spends a
/// handshake key of its epoch, so the state that spent it is saved before the commit leaves, and a commit
/// whose answer was lost is never made again under the same key. SQLite only: the first test reads the
/// relay's database file.
@Suite("End to end: commits and proposals are encrypted from the relay")
struct GroupHandshakePrivacyTests {
    /// The bodies of every group entry the relay still holds for `id`, oldest first, with whether each is a commit.
    static func storedEntries(_ relay: RelayProcess, _ id: GroupId, _ directory: TemporaryDirectory) async throws -> [(body: [UInt8], isCommit: Bool)] {
        try await GroupInfoSealEndToEndTests.query(relay, "SELECT hex(body) || '|' || is_commit FROM group_messages WHERE group_id = X'\(id.hex)' ORDER BY id", directory)
            .map { row in
                let parts = row.split(separator: "|")
                return (try #require(Hex.decode(String(parts[0]).lowercased())), parts[1] == "1")
            }
    }

    @Test("every commit and proposal the relay stores is a PrivateMessage naming no member: adds, an update, a removal and a leave")
    func storedHandshakesNameNobody() async throws {
        try await withRelay { relay, directory in
            let w = try await GroupWorld.make(on: relay, in: directory)
            var names: [[UInt8]] = []
            for device in w.all { names.append(Array(await device.address.description.utf8)) }
            let id = try await w.alice.engine.createGroup(name: "Quiet Committee", members: [await w.bob.address, await w.carol.address]).id
            // What the relay holds, read after every step (an entry is deleted once every recipient acknowledged it).
            var seen: [String: (body: [UInt8], isCommit: Bool)] = [:]
            func look() async throws {
                for entry in try await Self.storedEntries(relay, id, directory) { seen[Hex.encode(entry.body)] = entry }
            }
            func everyoneReceives() async throws {
                for device in w.all {
                    try await look()
                    try await device.engine.receivePending()
                }
                try await look()
            }
            try await everyoneReceives()                 // the adding commit, its Welcome, the name
            _ = try await w.carol.engine.updateOwnLeaf(in: id)
            try await everyoneReceives()
            // Bob leaves: a commit removing Bob's second device, then a proposal to remove this one, which
            // the member with the lowest leaf commits on receiving it (PROTOCOL.md §17.6).
            try await w.bob.engine.leaveGroup(id)
            for _ in 0..<2 { try await everyoneReceives() }
            _ = try await w.alice.engine.removeMembers([await w.carol.address], from: id)
            try await everyoneReceives()

            var handshakes = 0
            for entry in seen.values {
                let message = try MLSMessage(tlsEncoded: entry.body)
                for name in names {
                    #expect(!GroupInfoSealEndToEndTests.contains(entry.body, name), "a stored entry names \(String(decoding: name, as: UTF8.self))")
                }
                switch message.body {
                case .privateMessage(let m):
                    #expect((m.contentType == .commit) == entry.isCommit)
                    if m.contentType != .application { handshakes += 1 }
                case .welcome:
                    #expect(!entry.isCommit)
                default:
                    Issue.record("the relay stored a \(message.body) entry")
                }
            }
            // The adds, Carol's update, the removal of Bob's second device, Bob's proposal, its commit, Carol's removal.
            #expect(handshakes == 6, "\(handshakes) commits and proposals seen")
            let final = try #require(try w.alice.store.group(id))
            #expect(final.members.map(\.address) == [await w.alice.address.description])
            for device in w.all {
                #expect(try device.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed }, "nothing unreadable at \(device.home)")
            }
        }
    }

    @Test("a commit the relay took whose answer was lost: the kept state spent its key, the copy makes the committer rejoin, and the group goes on")
    func lostAnswer() async throws {
        try await withRelay { relay, directory in
            let hook = LosesCommitAnswers(inner: try RelayClient(endpoint: try TestDevice.endpoint(for: relay)))
            let (alice, bob, id) = try await GroupPair.make(aliceOn: hook, relay: relay, in: directory, name: "Lost answers").parts
            let before = try GroupInfoSealEndToEndTests.state(alice, id)

            hook.losing = true
            await #expect(throws: (any Error).self) { _ = try await alice.engine.updateOwnLeaf(in: id) }
            hook.losing = false
            let kept = try GroupInfoSealEndToEndTests.state(alice, id)
            #expect(kept.epoch == before.epoch, "the new epoch was not saved: its answer never came")
            #expect(!before.secretTree.hasUsed(leaf: before.myLeaf, kind: .handshake, generation: 0))
            #expect(kept.secretTree.hasUsed(leaf: kept.myLeaf, kind: .handshake, generation: 0), "the commit's key is spent in the kept state")

            // Bob applies the commit the relay took. Alice commits again: refused (the epoch has moved), she
            // drains her mailbox, where her first commit's copy (not the one in flight) tells her that her new
            // epoch was lost; she rejoins by external commit, and her commit is made again on the epoch after.
            _ = try await bob.engine.receivePending()
            #expect(try GroupInfoSealEndToEndTests.state(bob, id).epoch == before.epoch + 1)
            let saved = try await alice.engine.updateOwnLeaf(in: id)
            #expect(saved.epoch == before.epoch + 3, "Bob's epoch (her lost commit), her rejoin, her commit")
            #expect(try alice.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed }, "no unreadable notice: the rejoin says why")
            _ = try await bob.engine.receivePending()
            let (aliceNow, bobNow) = (try GroupInfoSealEndToEndTests.state(alice, id), try GroupInfoSealEndToEndTests.state(bob, id))
            #expect(aliceNow.epoch == bobNow.epoch && aliceNow.epochAuthenticator.constantTimeEquals(bobNow.epochAuthenticator))
            _ = try await alice.engine.send(text: "after the lost answer", toGroup: id)
            _ = try await bob.engine.receivePending()
            #expect(try bob.store.messages(in: .group(id), limit: 100).contains { $0.text == "after the lost answer" })
            #expect(try bob.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed })
        }
    }
}

extension GroupHandshakePrivacyTests {
    @Test("the commit's copy drained while the commit was in flight, then its answer lost: the next entry of the new epoch makes the committer rejoin")
    func copyDrainedThenAnswerLost() async throws {
        try await withRelay { relay, directory in
            let hook = LosesCommitAnswers(inner: try RelayClient(endpoint: try TestDevice.endpoint(for: relay)))
            let (alice, bob, id) = try await GroupPair.make(aliceOn: hook, relay: relay, in: directory, name: "Drained in flight").parts
            let epoch = try GroupInfoSealEndToEndTests.state(alice, id).epoch

            // The drain during the flight takes the copy (the commit in flight: dropped and acknowledged), then
            // the answer is lost: nothing in Alice's mailbox says any more that the relay took the commit.
            hook.losing = true
            hook.duringCommit = { _ = try? await alice.engine.receivePending() }
            await #expect(throws: (any Error).self) { _ = try await alice.engine.updateOwnLeaf(in: id) }
            hook.losing = false
            #expect(try GroupInfoSealEndToEndTests.state(alice, id).epoch == epoch)
            #expect(try await GroupOwnCopyEndToEndTests.queued(for: alice).isEmpty, "the copy was acknowledged")

            _ = try await bob.engine.receivePending()
            _ = try await bob.engine.send(text: "in the new epoch", toGroup: id)
            _ = try await alice.engine.receivePending()
            let rejoined = try GroupInfoSealEndToEndTests.state(alice, id)
            #expect(rejoined.epoch == epoch + 2, "Bob's message of epoch \(epoch + 1) told Alice she had missed a commit: she rejoined")
            _ = try await bob.engine.receivePending()
            _ = try await alice.engine.send(text: "back", toGroup: id)
            _ = try await bob.engine.receivePending()
            #expect(try bob.store.messages(in: .group(id), limit: 100).contains { $0.text == "back" })
            #expect(try bob.store.messages(in: .group(id), limit: 100).allSatisfy { $0.state != .failed })
        }
    }
}

/// A transport that, while `losing`, lets the relay take each commit, runs `duringCommit` (a drain, as a
/// push wake-up would start one), and then throws as a connection that dropped before the answer would.
private final class LosesCommitAnswers: ForwardingTransport, @unchecked Sendable {
    let inner: any RelayTransport
    private let lock = Lock()
    private var flag = false
    private var hook: (@Sendable () async -> Void)?
    var losing: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
    var duringCommit: (@Sendable () async -> Void)? {
        get { lock.withLock { hook } }
        set { lock.withLock { hook = newValue } }
    }

    init(inner: any RelayTransport) { self.inner = inner }

    func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        try await inner.commit(send, toGroup: groupId, secret: secret)
        guard losing else { return }
        if let hook = duringCommit { await hook() }
        throw ClientError.timedOut("the connection dropped before the answer")
    }
}
