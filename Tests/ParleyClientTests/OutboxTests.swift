import Foundation
@testable import ParleyClient
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// The outbox against an in-process relay: batching of what waited, retries with a growing pause while the
/// relay is busy or out of space, and a permanent refusal marked failed without holding back the rest.
@Suite("Outbox (in process)")
struct OutboxTests {
    @Test("messages that waited in the outbox go in requests of at most 64 once the relay takes them, in order")
    func waitingMessagesGoInBatches() async throws {
        let pair = try await Pair.make()
        try await pair.alice.engine.send(text: "first", to: pair.bobAddress)
        pair.relay.tap.refuseSends(503)
        let texts = (1...100).map { "waited \($0)" }
        for text in texts {
            await #expect(throws: ClientError.self) { try await pair.alice.engine.send(text: text, to: pair.bobAddress) }
        }
        #expect(try pair.alice.store.outboxEntries().count == 100)
        #expect(try pair.alice.sent(to: pair.bobAddress).filter { $0.state == .pending }.count == 100)

        pair.relay.tap.refuseSends(nil)
        let before = pair.relay.tap.count("send")
        try await pair.alice.engine.flushOutbox()
        #expect(pair.relay.tap.count("send") - before == 2, "100 messages to one device: 64 in the first request, 36 in the second")
        #expect(try pair.alice.store.outboxEntries().isEmpty)
        #expect(try pair.alice.sent(to: pair.bobAddress).allSatisfy { $0.state == .sent })
        try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["first"] + texts)
    }

    @Test("a relay busy (503), then out of space (507): the message waits, and is retried after a pause that doubles, then resets")
    func busyRelayRetriedWithBackOff() async throws {
        let pair = try await Pair.make()
        try await pair.alice.connect()
        defer { pair.alice.stopConnection() }
        pair.relay.tap.refuseNextSends([503, 507])
        let before = pair.relay.tap.count("send")
        do {
            try await pair.alice.engine.send(text: "patience", to: pair.bobAddress)
            Issue.record("the refused send succeeded")
        } catch ClientError.relay(status: 503, _, _) {}
        #expect(try pair.alice.sent(to: pair.bobAddress).map(\.state) == [.pending])
        #expect(try pair.alice.store.outboxEntries().count == 1)
        #expect(await pair.alice.engine.outboxRetryDelay == Engine.firstOutboxRetry * 2, "the next pause is twice the first")

        // No command from the user: the engine tries again after the pause (refused with 507: the pause
        // doubles again), and again (taken).
        try await eventually("the retries to deliver the message", timeout: .seconds(30)) {
            try pair.alice.sent(to: pair.bobAddress).map(\.state) == [.sent]
        }
        #expect(pair.relay.tap.count("send") - before == 3, "refused twice, then taken")
        #expect(await pair.alice.engine.outboxRetryDelay == Engine.firstOutboxRetry, "a success resets the pause")
        try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["patience"])
    }

    @Test("a refusal for good (413) marks the message failed and lets the next one through")
    func permanentRefusalMarkedFailed() async throws {
        // The relay's real rule: envelopes of at most 4096 bytes; a 5000-byte text passes the client's own limit.
        let pair = try await Pair.make { $0.maxEnvelopeBytes = 4096 }
        do {
            try await pair.alice.engine.send(text: String(repeating: "z", count: 5000), to: pair.bobAddress)
            Issue.record("the relay accepted an envelope over its limit")
        } catch let error as ClientError {
            guard case .relay(status: 413, _, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(error.isPermanentRefusal)
        }
        #expect(try pair.alice.sent(to: pair.bobAddress).map(\.state) == [.failed])
        #expect(try pair.alice.store.outboxEntries().isEmpty, "no longer in the outbox")

        let after = try await pair.alice.engine.send(text: "after the refused one", to: pair.bobAddress)
        #expect(after.state == .sent)
        try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["after the refused one"])
    }

    @Test("a refused request of several messages goes again one message at a time: only the refused one fails")
    func refusedRequestSplits() async throws {
        let pair = try await Pair.make { $0.maxEnvelopeBytes = 4096 }
        try await pair.alice.engine.send(text: "zero", to: pair.bobAddress)
        pair.relay.tap.refuseSends(503)
        for text in ["one", String(repeating: "w", count: 5000), "three"] {
            _ = try? await pair.alice.engine.send(text: text, to: pair.bobAddress)
        }
        pair.relay.tap.refuseSends(nil)
        try? await pair.alice.engine.flushOutbox()
        try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == ["zero", "one", "three"])
        #expect(try pair.alice.sent(to: pair.bobAddress).map(\.state) == [.sent, .sent, .failed, .sent])
    }
}
