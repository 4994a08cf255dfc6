import Testing
import Foundation
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// `unreadCounts()`: what the chat window's roster shows at start-up.
@Suite struct UnreadCountTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }
    let bob = "bob@relay.test", carol = "carol@relay.test", dave = "dave@relay.test"

    func outgoing(_ text: String, _ n: Int, to peer: String) -> MessageRecord {
        MessageRecord(conversation: direct(peer), direction: .outgoing, sender: DeviceAddress(address: "me@relay.test", deviceId: 1),
                      clientMessageId: [UInt8](repeating: UInt8(n), count: 16), sentAt: 1_800_000_000_000 + UInt64(n),
                      receivedAt: 0, text: text, state: .delivered)
    }

    func notice(_ text: String, _ n: Int, in peer: String) -> MessageRecord {
        MessageRecord(conversation: direct(peer), direction: .system, sender: DeviceAddress(address: peer, deviceId: 0),
                      clientMessageId: [UInt8](repeating: UInt8(n), count: 15) + [0xEE], sentAt: 1_800_000_000_000 + UInt64(n),
                      receivedAt: 1_800_000_000_000 + UInt64(n), text: text, state: .received)
    }

    @Test func countsIncomingAfterTheLastReadOrWrittenMessageAndSurvivesReopening() throws {
        do {
            let store = try makeStore(path)
            try store.insertMessages([
                // bob: two read, one reply, then three new ones with a notice between them.
                message("b1", 1, peer: bob), message("b2", 2, peer: bob), outgoing("reply", 3, to: bob),
                message("b4", 4, peer: bob), notice("the identity key changed", 5, in: bob), message("b6", 6, peer: bob),
                message("b7", 7, peer: bob),
                // carol: everything answered.
                message("c1", 10, peer: carol), outgoing("answer", 11, to: carol),
                // dave: never read at all.
                message("d1", 20, peer: dave), message("d2", 21, peer: dave),
            ])
            try store.advanceState(ofMessagesSentBy: try AccountAddress(bob), ids: [1, 2].map { message("", $0).clientMessageId }, to: .seen)
            #expect(try store.unreadCounts() == [direct(bob): 3, direct(dave): 2])
        }
        // The counts come from the file, not from anything the process kept.
        let reopened = try openStore(path)
        #expect(try reopened.unreadCounts() == [direct(bob): 3, direct(dave): 2])

        // Reading bob's conversation (what Engine.markRead does) clears his count only.
        try reopened.advanceState(ofMessagesSentBy: try AccountAddress(bob), ids: [4, 6, 7].map { message("", $0).clientMessageId }, to: .seen)
        #expect(try reopened.unreadCounts() == [direct(dave): 2])

        // A message after the read ones is unread again.
        try reopened.insertMessages([message("b8", 8, peer: bob)])
        #expect(try reopened.unreadCounts() == [direct(bob): 1, direct(dave): 2])
    }

    @Test func readsNoDeeperThanTheLimit() throws {
        let store = try makeStore(path)
        try store.insertMessages((1...30).map { message("m\($0)", $0, peer: bob) })
        #expect(try store.unreadCounts() == [direct(bob): 30])
        #expect(try store.unreadCounts(limit: 12) == [direct(bob): 12])
        // Marking only the newest (as reading the last page does) leaves nothing unread before it.
        try store.advanceState(ofMessagesSentBy: try AccountAddress(bob), ids: [message("", 30).clientMessageId], to: .seen)
        #expect(try store.unreadCounts().isEmpty)
    }

    @Test func emptyStoreHasNoCounts() throws {
        #expect(try makeStore(path).unreadCounts().isEmpty)
    }

    @Test("unreadMessages: the incoming ones still received above the newest read one, oldest first; replies and notices do not end the walk")
    func unreadMessagesForMarkingRead() throws {
        let store = try makeStore(path)
        try store.insertMessages([
            message("b1", 1, peer: bob), message("b2", 2, peer: bob), message("b3", 3, peer: bob),
            outgoing("reply without reading", 4, to: bob), notice("a device was added", 5, in: bob), message("b6", 6, peer: bob),
            message("c1", 10, peer: carol),
        ])
        try store.advanceState(ofMessagesSentBy: try AccountAddress(bob), ids: [message("", 1).clientMessageId], to: .seen)
        #expect(try store.unreadMessages(in: direct(bob)).map(\.text) == ["b2", "b3", "b6"])
        #expect(try store.unreadMessages(in: direct(bob), limit: 2).map(\.text) == ["b6"], "no deeper than the limit")
        #expect(try store.unreadMessages(in: direct(carol)).map(\.text) == ["c1"])
        #expect(try store.unreadMessages(in: direct(dave)).isEmpty, "no conversation")

        try store.advanceState(ofMessagesSentBy: try AccountAddress(bob), ids: [2, 3, 6].map { message("", $0).clientMessageId }, to: .seen)
        #expect(try store.unreadMessages(in: direct(bob)).isEmpty)
        try store.insertMessages([message("b7", 7, peer: bob)])
        #expect(try store.unreadMessages(in: direct(bob)).map(\.text) == ["b7"], "the walk stops at the newest read message")
    }
}
