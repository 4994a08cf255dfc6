import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
import Testing

/// `GET /api/v1/events` and several accounts in one daemon: messages sent through the relay by real
/// engines, read by a plain HTTP client.
@Suite("Headless: event streams and several accounts over HTTP")
struct EventStreamTests {
    static func text(_ event: RawHTTP.Event) -> String? { event.json?["envelope"]?["dataMessage"]?["message"]?.stringValue }

    /// The next message event, past receipts and typing indicators.
    static func message(_ stream: RawHTTP) async throws -> RawHTTP.Event? {
        while let event = try await stream.event() {
            if text(event) != nil { return event }
        }
        return nil
    }

    @Test("a reconnect in the middle of 1,000 messages: every message exactly once across the two streams, in order")
    func reconnect() async throws {
        let daemon = try await DaemonFixture(served: ["bot"], others: ["alice"])
        let bot = await daemon.served[0].address.description, alice = daemon.others[0]
        try await alice.engine.addContact(try AccountAddress(bot))
        let total = 1_000
        let sender = Task {
            for i in 0..<total { _ = try await alice.engine.send(text: "message \(i)", to: try AccountAddress(bot)) }
        }
        var seen: [String] = [], ids: [Int64] = []
        let (first, status) = try await RawHTTP.events(port: daemon.port)
        #expect(status == 200)
        while seen.count < 400, let event = try await first.event() {
            #expect(event.event == "receive")
            #expect(event.json?["account"] == .string(bot))
            seen.append(try #require(Self.text(event)))
            ids.append(try #require(event.id.flatMap { Int64($0) }))
        }
        // The client goes away mid-stream (whatever the daemon already wrote to the socket is lost with it).
        let resumeFrom = try #require(ids.last)
        withExtendedLifetime(first) {}
        _ = consume first
        let (second, again) = try await RawHTTP.events(port: daemon.port, headers: ["Last-Event-ID": String(resumeFrom)])
        #expect(again == 200)
        while seen.count < total, let event = try await second.event() {
            seen.append(try #require(Self.text(event)))
            ids.append(try #require(event.id.flatMap { Int64($0) }))
        }
        try await sender.value
        #expect(seen == (0..<total).map { "message \($0)" })
        #expect(zip(ids, ids.dropFirst()).allSatisfy { $0 < $1 }, "event ids increase")
    }

    @Test("two accounts in one daemon exchange messages; requests name their account; each keeps its own cursor")
    func twoAccounts() async throws {
        let daemon = try await DaemonFixture(served: ["one", "two"])
        let one = await daemon.served[0].address.description, two = await daemon.served[1].address.description
        func rpc(_ method: String, _ params: JSONValue) async throws -> JSONValue {
            let body = JSONValue.object(["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]).serialized
            return try #require(try await daemon.rpc(body).json)
        }
        // Without an account, a request is refused (the error lists the accounts), except version and listAccounts.
        let refused = try await rpc("listContacts", [:])
        #expect(refused["error"]?["code"] == -32602)
        #expect(refused["error"]?["data"] == [.string(one), .string(two)])
        #expect(try await rpc("listAccounts", [:])["result"] == [["number": .string(one)], ["number": .string(two)]])
        #expect(try await rpc("listContacts", ["account": "nobody@127.0.0.1:1"])["error"]?["code"] == -32602)

        let (toTwo, _) = try await RawHTTP.events(port: daemon.port, query: "?account=" + two)
        #expect(try await rpc("addContact", ["account": .string(one), "recipient": .string(two)])["result"]?["address"] == .string(two))
        let sent = try await rpc("send", ["account": .string(one), "recipient": .string(two), "message": "hello two"])
        #expect(sent["result"]?["results"]?.arrayValue?.first?["type"] == "SUCCESS")
        let got = try #require(try await Self.message(toTwo))
        #expect(got.json?["account"] == .string(two))
        #expect(got.json?["envelope"]?["source"] == .string(one))
        #expect(Self.text(got) == "hello two")

        // The reply, read on a stream of both accounts: its id names each account's position.
        let (both, _) = try await RawHTTP.events(port: daemon.port, headers: ["Last-Event-ID": "\(two)=\(got.id ?? "")"])
        #expect(try await rpc("send", ["account": .string(two), "recipient": .string(one), "message": "hello one"])["result"] != nil)
        let reply = try #require(try await Self.message(both))
        #expect(reply.json?["account"] == .string(one))
        #expect(Self.text(reply) == "hello one")
        let id = try #require(reply.id)
        #expect(id.contains("\(one)=") && id.contains("\(two)=\(got.id ?? "")"))
        // Each account's cursor is its own, in its own store.
        let replyPosition = try #require(id.split(separator: ",").first { $0.hasPrefix("\(one)=") }.flatMap { Int64($0.dropFirst(one.count + 1)) })
        try await eventually("account one's cursor saved") {
            try await daemon.server.account(one)!.context.hub.cursor(named: "default") == replyPosition
        }
        // Account two's cursor is past its message (and past its own sent reply, which is no notification).
        #expect(try await daemon.server.account(two)!.context.hub.cursor(named: "default") >= Int64(got.id ?? "") ?? .max)
    }

    @Test("200 idle event streams leave the daemon answering and delivering; one more than the cap is refused")
    func manyIdleStreams() async throws {
        let daemon = try await DaemonFixture(served: ["bot"], others: ["alice"]) { $0.maxEventStreams = 200 }
        let bot = await daemon.served[0].address.description, alice = daemon.others[0]
        var streams: [RawHTTP] = []
        for _ in 0..<200 {
            let (stream, status) = try await RawHTTP.events(port: daemon.port, query: "?cursor=idle")
            #expect(status == 200)
            streams.append(stream)
        }
        let (_, over) = try await RawHTTP.events(port: daemon.port)
        #expect(over == 503)
        #expect(try await daemon.client().request("GET", "/api/v1/check").status == 200)
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"version"}"#).json?["result"] != nil)
        try await alice.engine.addContact(try AccountAddress(bot))
        _ = try await alice.engine.send(text: "to everyone", to: try AccountAddress(bot))
        for index in [0, 99, 199] {
            #expect(Self.text(try #require(try await Self.message(streams[index]))) == "to everyone")
        }
        // Streams that close free their places.
        streams.removeAll()
        try await eventually("a place is free again") {
            let (_, status) = try await RawHTTP.events(port: daemon.port)
            return status == 200
        }
    }
}
