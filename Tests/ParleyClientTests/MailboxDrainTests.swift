import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// The receive path against an in-process relay: pages, the acknowledgement that asks for the next page,
/// and acknowledgement only of what the store holds.
@Suite("Mailbox drain (in process)")
struct MailboxDrainTests {
    @Test("a backlog of several pages arrives whole and in order; each next page is asked for with the acknowledgement of the one before")
    func backlogInPages() async throws {
        let pair = try await Pair.make()
        let texts = (1...230).map { "backlog \($0)" }
        for text in texts { try await pair.alice.engine.send(text: text, to: pair.bobAddress) }
        #expect(try await pair.bobsMailbox() == 230)

        let arrived = try await pair.bob.engine.receivePending()
        #expect(try pair.bob.incomingTexts(from: pair.aliceAddress) == texts)
        #expect(arrived.filter { if case .message = $0 { true } else { false } }.count == 230)
        #expect(try await pair.bobsMailbox() == 0, "everything stored was acknowledged")
        // 100 a page: the first fetched, the second and third asked for with the acknowledgement of the page
        // before, the third (the relay's last: more == false) acknowledged alone.
        #expect(pair.relay.tap.count("fetch") == 1)
        #expect(pair.relay.tap.count("ack+fetch") == 2)
        #expect(pair.relay.tap.count("ack") == 1)
    }

    @Test("nothing is acknowledged before it is committed to the store")
    func acknowledgedOnlyOnceStored() async throws {
        let pair = try await Pair.make()
        for i in 1...150 { try await pair.alice.engine.send(text: "durable \(i)", to: pair.bobAddress) }
        let store = pair.bob.store, alice = pair.aliceAddress
        let log = AcknowledgementLog()
        pair.relay.tap.beforeAcknowledging { ids in
            let stored = (try? store.messages(in: .direct(alice), limit: 10_000).filter { $0.direction == .incoming }.count) ?? -1
            log.record(ids: ids, stored: stored)
        }
        try await pair.bob.engine.receivePending()

        let acknowledgements = log.entries
        #expect(acknowledgements.count >= 2, "a page acknowledged with the next request, the last on its own")
        var acknowledged = 0
        for (ids, stored) in acknowledgements {
            acknowledged += ids.count
            #expect(acknowledged <= stored, "\(acknowledged) envelopes acknowledged when only \(stored) messages were stored")
        }
        #expect(acknowledged == 150)
        #expect(try await pair.bobsMailbox() == 0)
    }

    @Test("the push channel drains what arrives, without a receive command")
    func pushWakesTheDrain() async throws {
        let pair = try await Pair.make()
        try await pair.bob.connect()
        defer { pair.bob.stopConnection() }
        try await pair.alice.engine.send(text: "woken", to: pair.bobAddress)
        try await eventually("Bob's push channel to fetch the message") {
            try pair.bob.incomingTexts(from: pair.aliceAddress) == ["woken"]
        }
        try await eventually("Bob's mailbox to be acknowledged") { try await pair.bobsMailbox() == 0 }
    }
}

final class AcknowledgementLog: @unchecked Sendable {
    private let lock = Lock()
    private var recorded: [(ids: [String], stored: Int)] = []
    func record(ids: [String], stored: Int) { lock.withLock { recorded.append((ids, stored)) } }
    var entries: [(ids: [String], stored: Int)] { lock.withLock { recorded } }
}
