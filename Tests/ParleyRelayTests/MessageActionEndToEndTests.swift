import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// Replies, reactions, edits and deletes end to end on a real relay: Alice (two devices) and Bob. Each
/// is seen on the other side and on Alice's second device; a forged edit is refused everywhere.
@Suite("Message actions end to end")
struct MessageActionEndToEndTests {
    @Test("reply, react, edit and delete reach the contact and the sender's second device")
    func actionsReachEveryDevice() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            let (a2, _) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-2")
            let alice = Operations(engine: a1.engine), bob = Operations(engine: b1.engine)
            func message(_ device: TestDevice, with peer: AccountAddress, _ text: String) throws -> MessageRecord {
                try #require(try device.history(with: peer).last { $0.text == text || $0.earlierTexts.contains { $0.text == text } })
            }

            let question = try await b1.engine.send(text: "Lunch at noon?", to: a)
            for device in [a1, a2] { try await device.engine.receivePending() }
            // A reply (quoting Bob's message), then Alice's reaction to Bob's message and Bob's to hers.
            let sent = try await alice.send(.init(recipients: [b], text: "yes", replyTo: .id(question.clientMessageId)))
            _ = try await alice.react(in: b, to: .id(question.clientMessageId), emoji: "👍")
            try await b1.engine.receivePending()
            #expect(try message(b1, with: a, "yes").replyTo == question.clientMessageId)
            #expect(try message(b1, with: a, "Lunch at noon?").reactions == [Reaction(author: a.description, emoji: "👍")])
            _ = try await bob.react(in: a, to: .timestamp(try #require(sent.timestamp), author: a), emoji: "🎉")
            // Alice changes her mind: a new reaction replaces the first one.
            _ = try await alice.react(in: b, to: .id(question.clientMessageId), emoji: "❤️")

            // Alice edits her reply twice, then sends and deletes another.
            _ = try await alice.edit(in: b, .id(Hex.decode(sent.id!)!), text: "yes, at noon")
            _ = try await alice.edit(in: b, .id(Hex.decode(sent.id!)!), text: "yes, at 12:30")
            let oops = try await a1.engine.send(text: "wrong chat", to: b)
            let deleted = try await alice.deleteForEveryone(in: b, .id(oops.clientMessageId))
            #expect(deleted.deleted)

            for device in [b1, a2, a1] { try await device.engine.receivePending() }
            for (device, peer) in [(a1, b), (a2, b), (b1, a)] {
                let reply = try message(device, with: peer, "yes, at 12:30")
                #expect(reply.text == "yes, at 12:30" && reply.earlierTexts.map(\.text) == ["yes", "yes, at noon"], "\(peer)")
                #expect(reply.replyTo == question.clientMessageId)
                #expect(reply.reactions == [Reaction(author: b.description, emoji: "🎉")])
                let lunch = try message(device, with: peer, "Lunch at noon?")
                #expect(lunch.reactions == [Reaction(author: a.description, emoji: "❤️")], "one reaction per person")
                let gone = try #require(try device.history(with: peer).first { $0.clientMessageId == oops.clientMessageId })
                #expect(gone.deleted && gone.text.isEmpty)
            }

            // Bob may not edit or delete Alice's messages: the operations refuse, and a forged content that
            // reaches Alice anyway (sent through the engine) changes nothing there.
            await #expect(throws: OperationError.self) { try await bob.edit(in: a, .id(Hex.decode(sent.id!)!), text: "forged") }
            try await b1.engine.edit(Hex.decode(sent.id!)!, in: .direct(a), text: "forged by bob")
            try await b1.engine.deleteForEveryone(Hex.decode(sent.id!)!, in: .direct(a))
            try await a1.engine.receivePending()
            #expect(try message(a1, with: b, "yes, at 12:30").text == "yes, at 12:30")
            #expect(try message(a1, with: b, "yes, at 12:30").deleted == false)

            // Removing a reaction.
            _ = try await alice.react(in: b, to: .id(question.clientMessageId), emoji: "❤️", remove: true)
            try await b1.engine.receivePending()
            #expect(try message(b1, with: a, "Lunch at noon?").reactions.isEmpty)
        }
    }

    @Test("the receive notifications carry reactions, edits and deletes in signal-cli's shapes")
    func notificationsInSignalShapes() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            let hello = try await a1.engine.send(text: "hello", to: b)
            try await b1.engine.receivePending()
            _ = try await Operations(engine: a1.engine).react(in: b, to: .id(hello.clientMessageId), emoji: "👍")
            _ = try await Operations(engine: a1.engine).edit(in: b, .id(hello.clientMessageId), text: "hello\u{1B}]0;pwned\u{07}")
            _ = try await Operations(engine: a1.engine).deleteForEveryone(in: b, .id(hello.clientMessageId))
            let events = try await b1.engine.receivePending()
            let lines = events.compactMap { event in
                ReceivedShapes.notification(for: event, account: b, now: 0, sentAt: { _, _ in nil }).map { JSONValue.object($0.params).serialized }
            }
            #expect(lines.count == 3)
            #expect(lines[0].contains("\"reaction\":{") && lines[0].contains("\"targetSentTimestamp\":\(hello.sentAt)") && lines[0].contains("\"isRemove\":false"))
            #expect(lines[0].contains("\"targetAuthor\":\"\(a)\""))
            #expect(lines[1].contains("\"editMessage\":{") && !lines[1].contains("\u{1B}"), "the peer's text never carries a raw escape")
            #expect(lines[2].contains("\"remoteDelete\":{\"id\"") || lines[2].contains("\"remoteDelete\":{"))
        }
    }
}
