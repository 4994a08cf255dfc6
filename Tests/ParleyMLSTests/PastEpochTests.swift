import ParleyCrypto
@testable import ParleyMLS
import Testing

/// Late application messages: one sent in an epoch the reader has left by its own commit (the delivery
/// service ordered it before that commit, but the reader committed before reading its mailbox).
@Suite struct PastEpochTests {
    struct Three {
        var a: Group, b: Group, c: Group
    }

    static func epoch(of message: MLSMessage) -> UInt64? {
        if case .privateMessage(let m) = message.body { m.epoch } else { nil }
    }

    static func three() throws -> Three {
        let suite = CipherSuite.x25519ChaCha20Poly1305
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        let carol = try TestClient(suite: suite, name: "carol")
        var a = try alice.create()
        let add = try a.commit(adding: [bob.keyPackage, carol.keyPackage])
        return Three(a: a, b: try bob.join(try #require(add.welcome)), c: try carol.join(try #require(add.welcome)))
    }

    @Test func aMessageOfTheEpochThisMemberEndedIsStillOpenedOnceBySenderOfThatEpoch() throws {
        var g = try Self.three()
        let late = try g.b.encrypt(Array("sent before the commit".utf8))
        // Carol commits without having read Bob's message, and removes him in it.
        let commit = try g.c.commit(removing: [1])
        _ = try g.a.process(commit.message)
        let lateEpoch = try #require(Self.epoch(of: late))
        #expect(g.c.epoch == lateEpoch + 1)
        #expect(try g.c.process(late) == .application(data: Array("sent before the commit".utf8), sender: 1))
        #expect(g.c.credential(ofLeaf: 1, inEpoch: lateEpoch) == .basic(identity: Array("bob".utf8)),
                "the sender is named by the epoch's tree: the commit removed him")
        #expect(g.c.credential(ofLeaf: 1, inEpoch: g.c.epoch) == nil)
        // Alice processed the commit first, then the message: the same.
        #expect(try g.a.process(late) == .application(data: Array("sent before the commit".utf8), sender: 1))
        // Its key was used: a replay is refused and changes nothing.
        let before = g.c.serialized()
        #expect(throws: MLSError.self) { try g.c.process(late) }
        #expect(g.c.serialized().unprotectedBytes == before.unprotectedBytes)
    }

    @Test func pastEpochsSurviveTheStoreAndOnlyTheLastTwoAreKept() throws {
        var g = try Self.three()
        let late = try g.b.encrypt(Array("one".utf8))
        let lateCommitProposal = try g.b.propose(.remove(leafIndex: 2))
        _ = try g.c.commit()
        var restored = try Group(serialized: g.c.serialized())
        #expect(try restored.process(late) == .application(data: Array("one".utf8), sender: 1))
        #expect(throws: MLSError.self, "only application data is opened in a past epoch") { try restored.process(lateCommitProposal) }

        let older = try g.a.encrypt(Array("three epochs ago".utf8))
        for _ in 0..<3 { _ = try g.c.commit() }
        #expect(g.c.pastEpochs.count == Group.retainedPastEpochs)
        #expect(throws: MLSError.self, "an epoch older than the kept ones is gone") { try g.c.process(older) }
    }

    @Test func aFormatOneStateReadsWithNoPastEpochs() throws {
        var g = try Self.three()
        _ = try g.c.commit()
        #expect(g.c.pastEpochs.count == 1)
        var state = g.c.serialized().unprotectedBytes
        // Format 1 is format 2 without the trailing past_epochs vector.
        var w = TLSWriter()
        Group.encode(g.c.pastEpochs, to: &w)
        state.removeLast(w.bytes.count)
        state[0] = 1
        let old = try Group(serialized: SecretBytes(state))
        #expect(old.pastEpochs.isEmpty && old.epoch == g.c.epoch)
    }
}
