import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// Reactions, edits and deletes applied to stored messages: only where the actor may, kept across a reopen,
/// and on a store written before message actions existed (the v1 fixture).
@Suite struct MessageActionStoreTests {
    let directory = try! TemporaryDirectory("store")
    let bob = try! AccountAddress("bob@relay.test"), alice = try! AccountAddress("alice@relay.test")

    func action(_ change: MessageAction.Change, by actor: AccountAddress, on author: AccountAddress, _ target: [UInt8],
                in peer: AccountAddress, at: UInt64 = 1_900_000_000_000) -> MessageAction {
        MessageAction(change: change, actor: actor, targetAuthor: author, target: target, conversation: .direct(peer), at: at)
    }

    @Test func reactionsEditsAndDeletesApplyOnlyWhereTheActorMay() throws {
        let path = directory.sub("parley.db")
        let store = try makeStore(path)
        let theirs = message("hello", 1, peer: "bob@relay.test")
        try store.insertMessages([theirs])
        let id = theirs.clientMessageId

        // Reactions: one per person, a new one replaces it, removal takes it away.
        try #require(try store.apply(action(.react(emoji: "👍", remove: false), by: alice, on: bob, id, in: bob)))
        try store.apply(action(.react(emoji: "🎉", remove: false), by: bob, on: bob, id, in: bob))
        let replaced = try #require(try store.apply(action(.react(emoji: "❤️", remove: false), by: alice, on: bob, id, in: bob)))
        #expect(replaced.reactions == [Reaction(author: alice.description, emoji: "❤️"), Reaction(author: bob.description, emoji: "🎉")])
        let removed = try #require(try store.apply(action(.react(emoji: "❤️", remove: true), by: alice, on: bob, id, in: bob)))
        #expect(removed.reactions == [Reaction(author: bob.description, emoji: "🎉")])

        // A forged edit or delete: Alice's device is told Alice edits or deletes Bob's message. It names
        // no message of hers, so nothing changes.
        #expect(try store.apply(action(.edit(text: "forged"), by: alice, on: alice, id, in: bob)) == nil)
        #expect(try store.apply(action(.delete, by: alice, on: alice, id, in: bob)) == nil)
        // Nor may anyone edit in the name of another: the author field must be the actor.
        #expect(try store.apply(action(.edit(text: "forged"), by: alice, on: bob, id, in: bob)) == nil)
        // The right message in the wrong conversation is refused too.
        let carol = try AccountAddress("carol@relay.test")
        #expect(try store.apply(action(.react(emoji: "👍", remove: false), by: carol, on: bob, id, in: carol)) == nil)
        #expect(try store.message(sentBy: bob, clientMessageId: id)?.text == "hello")

        // The author's edits: the text changes, the earlier ones are kept in order, search finds the new one.
        try #require(try store.apply(action(.edit(text: "hello, world"), by: bob, on: bob, id, in: bob, at: 10)))
        let edited = try #require(try store.apply(action(.edit(text: "hello, everyone"), by: bob, on: bob, id, in: bob, at: 20)))
        #expect(edited.text == "hello, everyone" && edited.edited)
        #expect(edited.earlierTexts == [EarlierText(text: "hello", until: 10), EarlierText(text: "hello, world", until: 20)])
        #expect(try store.search("everyone").map(\.clientMessageId) == [id])

        // Kept across a reopen.
        let reopened = try openStore(path)
        #expect(try reopened.message(sentBy: bob, clientMessageId: id) == edited)

        // The author's delete: everything but the fact is gone, and nothing applies after it.
        let deleted = try #require(try reopened.apply(action(.delete, by: bob, on: bob, id, in: bob)))
        #expect(deleted.deleted && deleted.text.isEmpty && deleted.earlierTexts.isEmpty && deleted.reactions.isEmpty)
        #expect(try reopened.apply(action(.edit(text: "back"), by: bob, on: bob, id, in: bob)) == nil)
        #expect(try reopened.apply(action(.react(emoji: "👍", remove: false), by: alice, on: bob, id, in: bob)) == nil)
        #expect(try reopened.search("hello").isEmpty)
        #expect(try reopened.verify().rows["messages"] == 1)
    }

    /// A record with a reply, an attachment and every action field round-trips; a record without them
    /// is the same bytes as before message actions (older code reads it).
    @Test func recordsWithoutActionsKeepTheirEncoding() throws {
        var record = message("plain", 3)
        let plain = RecordCodec.encode(record)
        #expect(try RecordCodec.decodeMessage(plain, id: 0, state: .received) == record)
        #expect(plain.count == RecordCodec.textRange(of: plain)!.upperBound)   // nothing after the text
        record.replyTo = [UInt8](repeating: 5, count: 16)
        record.earlierTexts = [EarlierText(text: "first", until: 7)]
        record.reactions = [Reaction(author: "bob@relay.test", emoji: "👍")]
        #expect(try RecordCodec.decodeMessage(RecordCodec.encode(record), id: 0, state: .received) == record)
        record.deleted = true
        #expect(try RecordCodec.decodeMessage(RecordCodec.encode(record), id: 0, state: .received) == record)
    }

    /// A store written before message actions (schema v1, Tests/vectors/store-v1) opens, and its messages
    /// take reactions, edits and deletes.
    @Test func aStoreFromBeforeMessageActionsOpensAndTakesThem() throws {
        let path = directory.sub("bob.db")
        try FileManager.default.copyItem(atPath: StoreUpgradeTests.fixture.appendingPathComponent("bob.db").path, toPath: path)
        let store = try openStore(path)
        let own = try AccountAddress("bob@relay.test")
        let yes = [UInt8](repeating: 0x21, count: 16), hello = [UInt8](repeating: 0x01, count: 16)
        #expect(try store.message(sentBy: own, clientMessageId: yes)?.text == "yes, here")
        let edited = try #require(try store.apply(action(.edit(text: "yes, still here"), by: own, on: own, yes, in: alice)))
        #expect(edited.earlierTexts.map(\.text) == ["yes, here"])
        let reacted = try #require(try store.apply(action(.react(emoji: "👋", remove: false), by: own, on: alice, hello, in: alice)))
        #expect(reacted.reactions.map(\.emoji) == ["👋"])
        #expect(try openStore(path).message(sentBy: alice, clientMessageId: hello)?.reactions.count == 1)
        #expect(try store.verify().rows["messages"] == 7)
    }
}
