import Foundation
import ParleyClient
import ParleyProtocol
import ParleyHeadless
import Testing

@Suite("Headless: dispatch against a method table")
struct DispatcherTests {
    /// A toy table: echo returns its params; fail throws what `kind` names.
    static let methods: [RPCMethod<String>] = [
        RPCMethod("echo", "Returns its parameters.",
                  params: [RPCParam("text", .string, required: true, "Text."), RPCParam("n", .integers, "Numbers."),
                           RPCParam("flag", .boolean, "A flag.")],
                  result: "params") { call in
            ["text": .string(call.string("text")!), "n": .array(call.ints("n").map { .int($0) }), "context": .string(call.context)]
        },
        RPCMethod("fail", "Throws.", params: [RPCParam("kind", .string, required: true, "What to throw.")], result: "never") { call in
            switch call.string("kind") {
            case "contact": throw ClientError.unknownContact(try! AccountAddress("x@y:1"))
            case "network": throw ClientError.network("down")
            case "identity": throw ClientError.identityChanged(try! AccountAddress("x@y:1"))
            default: throw ClientError.rateLimited
            }
        },
    ]

    func handle(_ line: String) async throws -> JSONValue? {
        let pair = try SocketPair()
        let dispatcher = RPCDispatcher(methods: Self.methods, context: "ctx", account: "bot@h:1")
        guard let response = await dispatcher.handle(line, from: pair.server) else { return nil }
        return try #require(JSONValue.parse(response))
    }

    @Test("a valid call returns its result with the request's id")
    func result() async throws {
        let response = try await handle(#"{"jsonrpc":"2.0","id":3,"method":"echo","params":{"text":"hi","n":[1,2]}}"#)
        #expect(response == ["jsonrpc": "2.0", "id": 3, "result": ["text": "hi", "n": [1, 2], "context": "ctx"]])
        // A single integer where "integer or array" is allowed; the account parameter of signal-cli clients.
        let single = try await handle(#"{"jsonrpc":"2.0","id":"s","method":"echo","params":{"text":"hi","n":5,"account":"bot@h:1"}}"#)
        #expect(single?["result"]?["n"] == [5])
    }

    @Test("unknown method -32601; missing, unknown or mistyped parameters -32602; another account -32602")
    func errors() async throws {
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#)?["error"]?["code"] == -32601)
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)?["error"]?["code"] == -32602)
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":1}}"#)?["error"]?["code"] == -32602)
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","n":["x"]}}"#)?["error"]?["code"] == -32602)
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","bogus":1}}"#)?["error"]?["code"] == -32602)
        #expect(try await handle(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"text":"a","account":"other@h:1"}}"#)?["error"]?["code"] == -32602)
        #expect(try await handle("{oops")?["error"]?["code"] == -32700)
        #expect(try await handle("{oops")?["id"] == .null)
    }

    @Test("handler errors carry the application codes")
    func applicationErrors() async throws {
        func code(_ kind: String) async throws -> JSONValue? {
            try await handle(#"{"jsonrpc":"2.0","id":1,"method":"fail","params":{"kind":"\#(kind)"}}"#)?["error"]?["code"]
        }
        #expect(try await code("contact") == -1)
        #expect(try await code("network") == -3)
        #expect(try await code("identity") == -4)
        #expect(try await code("rate") == -5)
    }

    @Test("a request without an id is a notification: it runs, and nothing is answered")
    func notification() async throws {
        #expect(try await handle(#"{"jsonrpc":"2.0","method":"echo","params":{"text":"x"}}"#) == nil)
        #expect(try await handle(#"{"jsonrpc":"2.0","method":"nope"}"#) == nil)
    }
}

@Suite("Headless: newline-delimited connections")
struct LineConnectionTests {
    @Test("lines are split on LF (CRLF accepted), blank lines skipped, and an oversized line reported once")
    func splitting() async throws {
        let pair = try SocketPair()
        let lines = pair.server.lines()
        pair.write("one\r\n\n  \ntwo\nthr")
        pair.write("ee\n")
        pair.write(String(repeating: "x", count: LineConnection.maxLineBytes + 10) + "\nfour\n")
        pair.closeClient()
        var got: [String] = []
        for await incoming in lines {
            pair.server.consumed()
            switch incoming {
            case .line(let line): got.append(line.count > 100 ? "<\(line.count) bytes>" : line)
            case .oversized: got.append("<oversized>")
            }
        }
        #expect(got == ["one", "two", "three", "<oversized>", "four"])
    }

    @Test("send writes whole lines; after the peer closed, send reports false")
    func writing() async throws {
        let pair = try SocketPair()
        #expect(await pair.server.send(#"{"a":1}"#))
        #expect(pair.server.offer(#"{"b":2}"#))
        #expect(await pair.readLine() == #"{"a":1}"#)
        #expect(await pair.readLine() == #"{"b":2}"#)
        pair.closeClient()
        var sent = true
        // The first write after the close may still land in the socket buffer; a later one fails.
        for _ in 0..<50 where sent { sent = await pair.server.send(String(repeating: "y", count: 100_000)) }
        #expect(!sent)
        #expect(pair.server.isClosed)
    }
}
