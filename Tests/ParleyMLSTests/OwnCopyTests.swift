import ParleyCrypto
@testable import ParleyMLS
import Testing

/// A member's own messages coming back from a delivery service that queues every message for every
/// member device (Parley's relay, PROTOCOL.md §17.4): recognised from the state alone, and only those.
@Suite struct OwnCopyTests {
    @Test("a member's own application message, proposal and commit are its copies; another member's are not")
    func ownMessagesAreRecognised() throws {
        var w = try GroupNegativeTests.world()
        let text = try w.alice.encrypt(Array("mine".utf8))
        #expect(w.alice.ownCopy(text) == .sent)
        #expect(w.bob.ownCopy(text) == nil)
        #expect(try w.bob.process(text) == .application(data: Array("mine".utf8), sender: 0))
        let answer = try w.bob.encrypt(Array("theirs".utf8))
        #expect(w.alice.ownCopy(answer) == nil, "the same generation (0), another leaf")

        let proposal = try w.alice.propose(.remove(leafIndex: 2))
        #expect(w.alice.ownCopy(proposal) == .sent)
        #expect(w.bob.ownCopy(proposal) == nil)

        var committed = w.alice
        let commit = try committed.commit()
        #expect(w.alice.ownCopy(commit.message) == .unappliedCommit, "made, ordered, not applied here")
        #expect(committed.ownCopy(commit.message) == .sent, "applied: an epoch behind")
        #expect(committed.ownCopy(text) == .sent, "a message of the epoch it left, from its kept secrets")
        #expect(w.bob.ownCopy(commit.message) == nil)
    }

    @Test("a message that claims a member's leaf with a generation it has not used is no copy, and process refuses it unchanged")
    func aClaimIsNoCopy() throws {
        var w = try GroupNegativeTests.world()
        let first = try w.alice.encrypt(Array("one".utf8))
        _ = try w.bob.process(first)
        // Bob, who holds the group's secret tree, writes as Alice's leaf: her next generation (1), his signature.
        var forger = w.bob
        forger.myLeaf = 0
        let forged = try forger.encrypt(Array("not Alice".utf8))
        #expect(w.alice.ownCopy(forged) == nil)
        GroupNegativeTests.expectRefused(&w.alice, forged, .invalidSignature)

        // A proposal Alice signed but did not send from this state is not cached: no copy either.
        var elsewhere = w.alice
        let unsent = try elsewhere.propose(.remove(leafIndex: 1))
        #expect(w.alice.ownCopy(unsent) == nil)
        // A copy whose membership tag was altered is no copy.
        let sent = try w.alice.propose(.remove(leafIndex: 2))
        guard case .publicMessage(var tampered) = sent.body else { throw MLSError.invalidValue("test") }
        tampered.membershipTag?[0] ^= 1
        #expect(w.alice.ownCopy(MLSMessage(body: .publicMessage(tampered))) == nil)
        #expect(w.alice.ownCopy(sent) == .sent)
    }
}
