import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// How a drain of the mailbox ends, seen through a proxy that rewrites the relay's answers to the
/// acknowledgements that carry the next page (`POST /v1/mailbox/ack?fetch=`).
@Suite("Mailbox drain")
struct MailboxDrainTests {
    /// What each test works with: Bob's backlog from Alice, and Bob's engine talking to the relay through a
    /// proxy whose `tamper` rewrites the replies it chooses (counted in `rewritten`).
    private struct ProxiedBacklog {
        let bob: TestDevice
        let aliceAddress: AccountAddress
        let texts: [String]
        let engine: Engine
        let rewritten = Counter()
    }

    /// Queues `count` messages from Alice to Bob, then runs `body` with Bob's engine behind a proxy that
    /// lets `tamper` rewrite replies (nil: passed through unchanged).
    private func withProxiedBacklog(_ count: Int, _ label: String,
                                    tamper: @escaping @Sendable (TamperingProxy.ProxiedRequest, RawHTTP.Reply, Counter) -> RawHTTP.Reply?,
                                    _ body: (ProxiedBacklog, TamperingProxy, RelayProcess) async throws -> Void) async throws {
        try await withRelay { relay, directory in
            let (_, bob, aliceAddress, texts) = try await TestDevice.backlog(count, label, on: relay, in: directory)
            let proxy = try await TamperingProxy.start()
            defer { proxy.stop() }
            proxy.setUpstream(relay.baseURL)
            let engine = try Engine(store: bob.store, relay: try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(proxy.port)")))
            let backlog = ProxiedBacklog(bob: bob, aliceAddress: aliceAddress, texts: texts, engine: engine)
            let rewritten = backlog.rewritten
            proxy.setTamper { request, reply in tamper(request, reply, rewritten) }
            try await body(backlog, proxy, relay)
        }
    }

    /// A page of one envelope nobody can open, under a fresh relay id, said to be the last.
    private static func lastPage(id: Int) -> RawHTTP.Reply {
        let page = FetchResponse(messages: [QueuedMessage(id: String(id), envelope: Base64Bytes([1, 2, 3]), receivedAt: 0)],
                                 more: false, preKeysLow: false)
        return RawHTTP.Reply(status: 200, body: [UInt8](try! JSONEncoder().encode(page)))
    }

    @Test("receivePending stops at the page the relay calls its last, though more keeps arriving")
    func stopsAtTheLastPage() async throws {
        // Every page that comes with an acknowledgement holds a new envelope, as if mail kept arriving, and
        // says it is the last: a drain that ran until an empty page would never end (the proxy gives up
        // after 20, and the count shows it).
        try await withProxiedBacklog(150, "page", tamper: { request, reply, rewritten in
            guard request.method == "POST", request.path == "/v1/mailbox/ack", reply.status == 200 else { return nil }
            let n = rewritten.next()
            return n <= 20 ? Self.lastPage(id: 1_000_000 + n) : nil
        }) { backlog, proxy, relay in
            let arrived = try await backlog.engine.receivePending()
            #expect(backlog.rewritten.value == 1, "one page after the first, then the drain stopped")
            #expect(arrived.filter(\.isMessage).count == 100)
            #expect(arrived.contains { if case .discarded = $0 { true } else { false } }, "the rewritten envelope is counted")

            // Without the rewriting, the rest arrives: every message once, in order.
            proxy.setTamper(nil)
            try await backlog.engine.receivePending()
            #expect(try backlog.bob.incomingTexts(from: backlog.aliceAddress) == backlog.texts)
            #expect(try await RawHTTP(relay).mailbox(token: try await backlog.engine.sessionToken()).isEmpty)
        }
    }

    @Test("a page that says one-time prekeys run low makes the drain refill them, once")
    func refillsWhenLow() async throws {
        // Alice's first message starts a session: one one-time prekey of each kind of Bob's is used up. The
        // relay's low mark is far below that; the proxy says "low" on the first page regardless.
        try await withProxiedBacklog(3, "low", tamper: { request, reply, rewritten in
            guard request.method == "GET", request.path == "/v1/mailbox", reply.status == 200,
                  let page = try? reply.decode(FetchResponse.self), !page.messages.isEmpty else { return nil }
            _ = rewritten.next()
            let low = FetchResponse(messages: page.messages, more: page.more, preKeysLow: true)
            return RawHTTP.Reply(status: 200, body: [UInt8](try! JSONEncoder().encode(low)))
        }) { backlog, _, _ in
            let full = LocalPreKeys.defaultOneTimeCount
            #expect(try await backlog.bob.engine.relay.preKeyCount(token: try await backlog.bob.token()).oneTimePreKeys == full - 1)
            try await backlog.engine.receivePending()
            #expect(backlog.rewritten.value == 1)
            let count = try await backlog.engine.relay.preKeyCount(token: try await backlog.engine.sessionToken())
            #expect(count.oneTimePreKeys == full && count.oneTimePQPreKeys == full, "topped up again")
            #expect(try backlog.bob.incomingTexts(from: backlog.aliceAddress) == backlog.texts)
        }
    }

    @Test("a relay that answers an acknowledgement without the next page (204) is asked for it: nothing is missed")
    func olderRelayWithoutPages() async throws {
        try await withProxiedBacklog(230, "old relay", tamper: { request, reply, rewritten in
            guard request.method == "POST", request.path == "/v1/mailbox/ack", reply.status == 200 else { return nil }
            _ = rewritten.next()
            return RawHTTP.Reply(status: 204, body: [])
        }) { backlog, _, relay in
            try await backlog.engine.receivePending()
            #expect(backlog.rewritten.value >= 2, "pages after the first were asked for with acknowledgements")
            #expect(try backlog.bob.incomingTexts(from: backlog.aliceAddress) == backlog.texts)
            #expect(try await RawHTTP(relay).mailbox(token: try await backlog.engine.sessionToken()).isEmpty)
        }
    }
}

/// A thread-safe count.
final class Counter: @unchecked Sendable {
    private let lock = Lock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func next() -> Int { lock.withLock { count += 1; return count } }
}

/// An account whose first prekey upload never reached the relay (init failed after registering it).
@Suite("Prekeys after a failed first upload")
struct FirstUploadLostTests {
    @Test("the first drain finds no prekeys on the relay and uploads them all, signed ones included; a contact can then start a session")
    func refillAfterLostFirstUpload() async throws {
        try await withRelay { relay, directory in
            let proxy = try await TamperingProxy.start()
            defer { proxy.stop() }
            proxy.setUpstream(relay.baseURL)
            proxy.setTamper { request, _ in
                request.method == "PUT" && request.path == "/v1/keys" ? RawHTTP.Reply(status: 503, body: []) : nil
            }
            let store = try TestDevice.newStore(home: directory.sub("home-hal"))
            let address = try AccountAddress("hal@\(relay.name)")
            let viaProxy = try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(proxy.port)"))
            await #expect(throws: ClientError.self) { _ = try await Engine.createAccount(address, store: store, relay: viaProxy) }
            #expect(try store.localAccount() != nil, "registered, and its keys kept")

            // The next command that reaches the relay (here: a drain of the mailbox) repairs it.
            let hal = TestDevice(engine: try Engine(store: store, relay: try RelayClient(endpoint: try TestDevice.endpoint(for: relay))),
                                 home: directory.sub("home-hal"))
            try await hal.engine.receivePending()
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            try await bob.engine.addContact(address)
            _ = try await bob.engine.send(text: "hello hal", to: address)
            try await hal.engine.receivePending()
            #expect(try hal.incomingTexts(from: await bob.address) == ["hello hal"])
        }
    }
}
