import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What the outbox does with what the relay will not take: a message too long for any envelope is refused
/// before it is stored; one refused for good is marked failed and lets the later ones through; one the
/// relay cannot take now (out of space, busy) waits and is tried again.
@Suite("Outbox: refusals, failed messages and a relay out of space")
struct OutboxRefusalTests {
    @Test("a text longer than one envelope is refused before it is stored, with the limit; the longest that fits arrives")
    func oversizedTextRefusedBeforeStoring() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let limit = await alice.engine.textLimit(for: .text(""), destination: bobAddress.description)
            #expect(limit > 90_000 && limit < Engine.envelopeLimit)

            for length in [300_000, limit + 1] {
                do {
                    try await alice.engine.send(text: String(repeating: "x", count: length), to: bobAddress)
                    Issue.record("a \(length)-byte text was accepted")
                } catch let error as ClientError {
                    #expect(error == .messageTooLarge(bytes: length, limit: limit))
                    #expect(error.exitCode == 1)
                    #expect(error.description.contains("at most \(limit) bytes"))
                }
            }
            #expect(try alice.history(with: bobAddress).isEmpty, "nothing of the refused texts was stored")
            #expect(try alice.store.outboxEntries().isEmpty)

            // The longest text that fits goes as a session start (the larger form) and the relay takes it.
            let longest = String(repeating: "y", count: limit)
            let sent = try await alice.engine.send(text: longest, to: bobAddress)
            #expect(sent.state == .sent)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == [longest])
            // It had no room for Alice's delivery access key (PROTOCOL.md §13.1): her next message carries it.
            #expect(try bob.store.deliveryAccessKey(of: aliceAddress) == nil)
            try await alice.engine.send(text: "short", to: bobAddress)
            try await bob.engine.receivePending()
            let aliceKey = try #require(try alice.store.deliveryAccessKey())
            #expect(try bob.store.deliveryAccessKey(of: aliceAddress) == aliceKey)
        }
    }

    @Test("the client's envelope limit is the relay's default")
    func envelopeLimitMatchesTheRelay() {
        #expect(Engine.envelopeLimit == RelayConfiguration(name: "r.test", host: "127.0.0.1", port: 1, dataDirectory: "/nonexistent").maxEnvelopeBytes)
    }

    @Test("a message the relay refuses for good is marked failed, and the next one to the same contact is delivered")
    func permanentRefusalDoesNotBlockTheQueue() async throws {
        // The relay takes envelopes of at most 4096 bytes: a 5000-byte text passes the client's own limit
        // (set for the default 96 KiB) and is refused with 413 on every try.
        try await withRelay(["--max-envelope-bytes", "4096"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let events = await alice.engine.subscribe()
            let toldFailed = OnceFlag()
            let watcher = Task {
                for await event in events {
                    if case .message(let record) = event, record.state == .failed { toldFailed.setIfUnset(); return }
                }
            }
            defer { watcher.cancel() }
            do {
                try await alice.engine.send(text: String(repeating: "z", count: 5000), to: bobAddress)
                Issue.record("the relay accepted an envelope over its limit")
            } catch let error as ClientError {
                guard case .relay(status: 413, _, _) = error else { Issue.record("unexpected \(error)"); return }
                #expect(error.isPermanentRefusal)
            }
            let refused = try alice.sent(to: bobAddress)
            #expect(refused.map(\.state) == [.failed], "shown as failed in the conversation")
            #expect(try alice.store.outboxEntries().isEmpty, "no longer in the outbox")
            try await eventually("front ends to be told it failed") { toldFailed.isSet }

            let after = try await alice.engine.send(text: "after the refused one", to: bobAddress)
            #expect(after.state == .sent)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["after the refused one"])

            // The failed message can be deleted (or sent again: see the next test).
            let failed = try #require(try await alice.engine.newestFailed(in: direct(bobAddress)))
            try await alice.engine.discard(failed)
            #expect(try alice.sent(to: bobAddress).map(\.text) == ["after the refused one"])
        }
    }

    @Test("several messages in one refused request go again one by one: only the refused one fails")
    func refusedRequestSplits() async throws {
        try await withRelay(["--max-envelope-bytes", "4096"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "zero", to: bobAddress)    // the session, so no bundle is needed below
            // Queued while the relay cannot be reached, then posted in one request that the relay refuses.
            try await relay.stop()
            for text in ["one", String(repeating: "w", count: 5000), "three"] {
                _ = try? await alice.engine.send(text: text, to: bobAddress)
            }
            #expect(try alice.store.outboxEntries().count >= 3)
            try await relay.restart()
            try? await alice.engine.flushOutbox()
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["zero", "one", "three"])
            #expect(try alice.sent(to: bobAddress).map(\.state) == [.sent, .sent, .failed, .sent])
        }
    }

    @Test("a relay out of space (507) or unavailable (503): the message waits in the outbox and goes by itself when it recovers")
    func relayOutOfSpaceKeepsAndRetries() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let refusing = RefusalSwitch()
            let proxy = try RelayProxy(relayPort: relay.port) { request in
                guard request.hasPrefix("POST /v1/messages/") else { return nil }
                switch refusing.next() {
                case 507?: return (507, #"{"error":"insufficient_storage","message":"the relay is short of disk space"}"#)
                case 503?: return (503, #"{"error":"unavailable","message":"the relay's database is locked"}"#)
                default: return nil
                }
            }
            defer { proxy.close() }
            let sender = try Engine(store: alice.store, relay: try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(proxy.port)", tls: false)))

            refusing.set([507, 507, 503, 507])
            do {
                try await sender.send(text: "waits for space", to: bobAddress)
                Issue.record("a 507 was taken for a delivery")
            } catch let error as ClientError {
                #expect(error == .relayOutOfSpace(mailboxFull: false))
                #expect(error.description == "the relay is out of space; your message waits in the outbox")
                #expect(error.isWorthRetrying && error.exitCode == 3)
            }
            #expect(try alice.sent(to: bobAddress).map(\.state) == [.pending])
            #expect(try alice.store.outboxEntries().count == 1)

            // With the connection running (as in the chat window or the daemon) the outbox is tried again
            // after growing pauses, through the 503 and 507s left, until the relay takes it.
            let connection = Task { await sender.runConnection() }
            defer { connection.cancel() }
            try await eventually("the outbox to be delivered after the relay recovers", timeout: .seconds(120)) {
                try alice.store.outboxEntries().isEmpty
            }
            #expect(refusing.remaining == 0, "every refusal was met by a retry")
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["waits for space"], "exactly once")
            #expect(try alice.sent(to: bobAddress).map(\.state) == [.sent])
        }
    }

    @Test("a failed message sent again arrives once, and the failed copy is gone")
    func resendFailed() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let refusing = RefusalSwitch()
            let proxy = try RelayProxy(relayPort: relay.port) { request in
                guard request.hasPrefix("POST /v1/messages/"), refusing.next() != nil else { return nil }
                return (413, #"{"error":"too_large","message":"an envelope exceeds 1024 bytes"}"#)
            }
            defer { proxy.close() }
            let sender = try Engine(store: alice.store, relay: try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(proxy.port)", tls: false)))
            refusing.set([413])
            _ = try? await sender.send(text: "second time lucky", to: bobAddress)
            let failed = try #require(try await sender.newestFailed(in: direct(bobAddress)))
            let again = try await sender.resend(failed)
            #expect(again.state == .sent)
            #expect(try alice.sent(to: bobAddress).map(\.state) == [.sent])
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["second time lucky"])
        }
    }
}

/// A list of statuses to answer with, one per request asked about, then nil (forward).
final class RefusalSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int] = []
    func set(_ list: [Int]) { lock.withLock { statuses = list } }
    func next() -> Int? { lock.withLock { statuses.isEmpty ? nil : statuses.removeFirst() } }
    var remaining: Int { lock.withLock { statuses.count } }
}

/// A loopback HTTP proxy in front of a relay process: `intercept` may answer a request itself (status and
/// JSON body); everything else is passed to the relay and its answer back. Push upgrades are refused.
final class RelayProxy: @unchecked Sendable {
    private let server: ScriptedHTTPServer
    var port: Int { server.port }

    init(relayPort: Int, intercept: @escaping @Sendable (String) -> (Int, String)?) throws {
        server = try ScriptedHTTPServer(byRequest: { _, request in
            if request.lowercased().contains("\r\nupgrade:") { return .answer(status: 404, body: "{}") }
            if let (status, body) = intercept(request) { return .answer(status: status, body: body) }
            return .raw(RelayProxy.forward(request, to: relayPort))
        })
    }

    func close() { server.close() }

    /// One request to the relay on a connection of its own; its whole answer (head and body).
    static func forward(_ request: String, to port: Int) -> String {
        let badGateway = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
        guard let socket = try? LoopbackSocket(port: port), (try? socket.send(request)) != nil else { return badGateway }
        var answer: [UInt8] = []
        while true {
            if let end = headEnd(answer) {
                let head = String(decoding: answer[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").compactMap { line -> Int? in
                    line.hasPrefix("content-length:") ? Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) : nil
                }.first ?? 0
                if answer.count >= end + length { return String(decoding: answer[..<(end + length)], as: UTF8.self) }
            }
            guard let bytes = try? socket.receive(timeoutSeconds: 30), !bytes.isEmpty else { return String(decoding: answer, as: UTF8.self) }
            answer += bytes
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { return i + 4 }
        return nil
    }
}
