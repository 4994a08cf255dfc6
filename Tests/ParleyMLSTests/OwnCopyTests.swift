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

    @Test("as PrivateMessages: a member's own proposal is its copy, and its commit once the state that spent the commit's key is kept; a commit made again from that state takes the next key")
    func privateHandshakes() throws {
        var w = try GroupNegativeTests.world()
        let proposal = try w.alice.propose(.remove(leafIndex: 2), wireFormat: .privateMessage)
        #expect(w.alice.ownCopy(proposal) == .sent)
        #expect(w.bob.ownCopy(proposal) == nil)
        #expect(try w.bob.process(proposal) == .proposal(.remove(leafIndex: 2), sender: .member(leafIndex: 0)))

        var committed = w.alice
        let first = try committed.commit(wireFormat: .privateMessage)
        let spent = try #require(first.stateWithCommitKeySpent)
        #expect(spent.epoch == w.alice.epoch)
        #expect(spent.ownCopy(first.message) == .unappliedCommit, "made, ordered, not applied here")
        #expect(w.alice.ownCopy(first.message) == nil, "a state that has not spent the key only sees a claim of its leaf")
        #expect(committed.ownCopy(first.message) == .sent, "applied: an epoch behind")
        #expect(w.bob.ownCopy(first.message) == nil)
        #expect(w.bob.isAuthenticCommit(first.message))
        #expect(!spent.isAuthenticCommit(first.message), "its key is spent: the committer cannot open it again")

        // The first commit's answer was lost: made again from the kept state, it takes the next handshake
        // generation; made from the state before, it would have taken the first one's key again.
        var again = spent
        let second = try again.commit(wireFormat: .privateMessage)
        var careless = w.alice
        let reused = try careless.commit(wireFormat: .privateMessage)
        #expect(try Self.handshakeGeneration(first.message, readBy: w.bob) == 1, "the proposal took generation 0")
        #expect(try Self.handshakeGeneration(second.message, readBy: w.bob) == 2)
        #expect(try Self.handshakeGeneration(reused.message, readBy: w.bob) == 1)
        #expect(try w.bob.process(second.message) == .commit(epoch: w.alice.epoch + 1))
        #expect(w.bob.epochAuthenticator.constantTimeEquals(again.epochAuthenticator))

        var publicCommitter = w.alice
        #expect(try publicCommitter.commit().stateWithCommitKeySpent == nil, "a PublicMessage spends no key")
    }

    static func handshakeGeneration(_ message: MLSMessage, readBy member: Group) throws -> UInt32 {
        guard case .privateMessage(let m) = message.body, m.contentType == .commit else { throw MLSError.invalidValue("not a PrivateMessage commit") }
        return try m.senderData(suite: member.suite, senderDataSecret: member.secrets.senderDataSecret).generation
    }
}
