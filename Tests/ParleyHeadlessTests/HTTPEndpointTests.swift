import Foundation
import ParleyClient
import ParleyCrypto
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
import Testing

/// `parley daemon --http`: signal-cli's routes, over a real socket on 127.0.0.1, in front of the daemon's
/// one dispatcher and real accounts on an in-process relay.
@Suite("Headless: the HTTP endpoint")
struct HTTPEndpointTests {
    @Test("a request and a batch over POST /api/v1/rpc; notifications only answer 201; /api/v1/check answers 200")
    func requestAndBatch() async throws {
        let daemon = try await DaemonFixture(served: ["bot"])
        let single = try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"version"}"#)
        #expect(single.status == 200)
        #expect(single.headers["content-type"] == "application/json")
        #expect(single.json?["result"]?["version"] == .string(ParleyVersion.string))
        let batch = try await daemon.rpc("""
            [{"jsonrpc":"2.0","id":"a","method":"listContacts"},{"jsonrpc":"2.0","method":"version"},
             {"jsonrpc":"2.0","id":"b","method":"nope"},7,{"jsonrpc":"2.0","id":"c","method":"listAccounts"}]
            """)
        #expect(batch.status == 200)
        let responses = try #require(batch.json?.arrayValue)
        // The notification gets no response; the rest answer in order.
        #expect(responses.map { $0["id"] } == ["a", "b", .null, "c"])
        #expect(responses[0]["result"] == [])
        #expect(responses[1]["error"]?["code"] == -32601)
        #expect(responses[2]["error"]?["code"] == -32600)
        #expect(responses[3]["result"] == [["number": .string(await daemon.served[0].address.description)]])
        #expect(try await daemon.rpc(#"[{"jsonrpc":"2.0","method":"version"}]"#).status == 201)
        let check = try await daemon.client().request("GET", "/api/v1/check")
        #expect(check.status == 200 && check.body.isEmpty)
        // Several requests on one kept-alive connection.
        let client = try daemon.client()
        for id in 1...3 {
            #expect(try await client.request("POST", "/api/v1/rpc", body: #"{"jsonrpc":"2.0","id":\#(id),"method":"version"}"#).json?["id"] == .int(Int64(id)))
        }
        // subscribeReceive needs a connection that stays open: over HTTP it is refused, never a silent success.
        let subscribe = try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"subscribeReceive"}"#)
        #expect(subscribe.json?["error"]?["code"] == -32602)
    }

    @Test("malformed and oversized bodies get their error and leave the daemon answering")
    func malformed() async throws {
        let daemon = try await DaemonFixture(served: ["bot"]) { $0.maxBodyBytes = 4096 }
        #expect(try await daemon.rpc("{oops").json?["error"]?["code"] == -32700)
        #expect(try await daemon.rpc("[]").json?["error"]?["code"] == -32600)
        #expect(try await daemon.rpc("\"text\"").json?["error"]?["code"] == -32600)
        #expect(try await daemon.rpc(String(repeating: "[", count: 3000)).json?["error"]?["code"] == -32700)
        #expect(try await daemon.client().request("POST", "/api/v1/rpc", body: "{}", headers: ["Content-Type": "text/plain"]).status == 415)
        #expect(try await daemon.client().request("GET", "/api/v1/rpc").status == 405)
        #expect(try await daemon.client().request("GET", "/elsewhere").status == 404)
        // Declared too large: refused before the body is read.
        let declared = try daemon.client()
        await declared.send("POST /api/v1/rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
        #expect(try await declared.response().status == 413)
        #expect(await declared.closedByPeer())
        // Chunked, growing past the limit: refused once it does.
        let chunked = try daemon.client()
        await chunked.send("POST /api/v1/rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in 0..<3 { await chunked.send("800\r\n" + String(repeating: " ", count: 2048) + "\r\n") }
        #expect(try await chunked.response().status == 413)
        // A client that asks before sending its body (curl over 1 KiB) is told to go on, then answered.
        let asking = try daemon.client()
        let body = #"{"jsonrpc":"2.0","id":9,"method":"version"}"#
        await asking.send("POST /api/v1/rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n" +
                          "Content-Length: \(body.utf8.count)\r\n\r\n")
        #expect(try await asking.head().0 == 100)
        await asking.send(body)
        #expect(try await asking.response().json?["id"] == 9)
        // Garbage that is no HTTP at all.
        let garbage = try daemon.client()
        await garbage.send("\u{01}\u{02} nonsense\r\n\r\n")
        #expect(await garbage.closedByPeer())
        #expect(try await daemon.client().request("GET", "/api/v1/check").status == 200)
    }

    @Test("a slow-loris client is cut off after the request timeout while others are answered")
    func slowLoris() async throws {
        let daemon = try await DaemonFixture(served: ["bot"]) { $0.requestTimeout = .seconds(1) }
        let slow = try daemon.client()
        let header = Array("GET /api/v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + String(repeating: "a", count: 400) + "\r\n\r\n")
        var sent = 0, refused = false
        // One byte every 50 ms would take 23 s; the daemon must close the connection well before the end.
        for byte in header.dropLast(4) {
            if await !slow.send(String(byte)) { refused = true; break }
            sent += 1
            if sent % 10 == 0, try await daemon.client().request("GET", "/api/v1/check").status != 200 { Issue.record("check failed") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let cutOff = refused ? true : await slow.closedByPeer(timeout: .seconds(5))
        #expect(cutOff)
        #expect(sent < header.count - 4, "the whole trickled head was accepted")
        // An idle kept-alive connection goes the same way.
        let idle = try daemon.client()
        #expect(try await idle.request("GET", "/api/v1/check").status == 200)
        #expect(await idle.closedByPeer(timeout: .seconds(10)))
    }

    @Test("the bearer token: required when configured (401 without or with a wrong one); only loopback binds without one")
    func token() async throws {
        let token = "0123456789abcdef-token"
        let daemon = try await DaemonFixture(served: ["bot"]) { $0.token = SecretBytes(Array(token.utf8)) }
        let version = #"{"jsonrpc":"2.0","id":1,"method":"version"}"#
        let missing = try await daemon.rpc(version)
        #expect(missing.status == 401)
        #expect(missing.headers["www-authenticate"] == "Bearer")
        #expect(try await daemon.rpc(version, headers: ["Authorization": "Bearer " + token + "x"]).status == 401)
        #expect(try await daemon.rpc(version, headers: ["Authorization": "Bearer " + String(token.dropLast()) + "X"]).status == 401)
        #expect(try await daemon.rpc(version, headers: ["Authorization": "Basic " + token]).status == 401)
        #expect(try await daemon.client().request("GET", "/api/v1/check").status == 401)
        let (_, streamStatus) = try await RawHTTP.events(port: daemon.port)
        #expect(streamStatus == 401)
        let good = try await daemon.rpc(version, headers: ["Authorization": "Bearer " + token])
        #expect(good.status == 200 && good.json?["result"] != nil)
        #expect(try await daemon.client().request("GET", "/api/v1/check", headers: ["Authorization": "bearer " + token]).status == 200)

        // Loopback is all of 127/8 and ::1; anything else needs a token, and binding is refused before it happens.
        for host in ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1"] { #expect(HTTPEndpointConfiguration.isLoopback(host), "\(host)") }
        for host in ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "::ffff:127.0.0.1", "128.0.0.1"] {
            #expect(!HTTPEndpointConfiguration.isLoopback(host), "\(host)")
        }
        await #expect(throws: HTTPEndpointError.self) {
            _ = try await HTTPEndpoint.bind(HTTPEndpointConfiguration(host: "0.0.0.0", port: 0), serving: daemon.server)
        }
        #expect(try HTTPEndpointConfiguration.parseAddress("localhost:8080") == ("127.0.0.1", 8080))
        #expect(try HTTPEndpointConfiguration.parseAddress("[::1]:80") == ("::1", 80))
        for bad in ["8080", "host.example:80", "127.0.0.1:99999", "[::1]80", "::1:80"] {
            #expect(throws: HTTPEndpointError.self, "\(bad)") { _ = try HTTPEndpointConfiguration.parseAddress(bad) }
        }
        // A token file: its first line, long enough.
        let file = daemon.directory.sub("token")
        try Data("short\n".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: HTTPEndpointError.self) { _ = try HTTPEndpointConfiguration.readToken(file: file) }
        try Data((token + "\nsecond line\n").utf8).write(to: URL(fileURLWithPath: file))
        #expect(try HTTPEndpointConfiguration.readToken(file: file).unprotectedBytes == Array(token.utf8))
    }
}
