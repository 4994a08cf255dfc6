import Foundation
import ParleyCrypto
import ParleyClient
import ParleyProtocol
import ParleyHeadless
import Testing

@Suite("Headless: JSON values and request parsing")
struct JSONRPCParsingTests {
    @Test("serialized JSON is one line, keys sorted, control characters escaped, and parses back")
    func serialization() throws {
        let value: JSONValue = ["b": "line one\nline \"two\"\t\u{1}", "a": [1, true, nil, .double(2.5)], "c": ["x": -7]]
        let text = value.serialized
        #expect(!text.contains("\n"))
        #expect(text == #"{"a":[1,true,null,2.5],"b":"line one\nline \"two\"\t\u0001","c":{"x":-7}}"#)
        #expect(JSONValue.parse(text) == value)
        #expect(JSONValue.parse(#""h\u00e9 ✓""#) == .string("hé ✓"))
    }

    @Test("hex round trip, and refusal of odd or non-hex text")
    func hex() {
        let bytes: [UInt8] = [0, 1, 0xAB, 0xFF]
        #expect(Hex.encode(bytes) == "0001abff")
        #expect(Hex.decode("0001ABff") == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
    }

    @Test("malformed lines get the JSON-RPC 2.0 error codes, with the id when it could be read")
    func requestErrors() throws {
        func failure(_ line: String) -> RPCFailure? {
            if case .failure(let f) = RPCRequest.parse(line) { return f }
            return nil
        }
        #expect(failure("{not json")?.error.code == .parseError)
        #expect(failure("{not json")?.id == .null)
        #expect(failure("[1,2]")?.error.code == .invalidRequest)
        #expect(failure("42")?.error.code == .invalidRequest)
        #expect(failure(#"{"id":7,"method":"send"}"#)?.error.code == .invalidRequest)
        #expect(failure(#"{"id":7,"method":"send"}"#)?.id == .int(7))
        #expect(failure(#"{"jsonrpc":"2.0","id":"a","method":5}"#)?.error.code == .invalidRequest)
        #expect(failure(#"{"jsonrpc":"2.0","id":{"x":1},"method":"send"}"#)?.error.code == .invalidRequest)
        #expect(failure(#"{"jsonrpc":"2.0","id":1,"method":"send","params":["a"]}"#)?.error.code == .invalidParams)
        let ok = try RPCRequest.parse(#"{"jsonrpc":"2.0","id":"x1","method":"send","params":{"recipient":"a@b:1"}}"#).get()
        #expect(ok.id == .string("x1"))
        #expect(ok.method == "send")
        #expect(ok.params["recipient"] == .string("a@b:1"))
        #expect(try RPCRequest.parse(#"{"jsonrpc":"2.0","method":"version"}"#).get().id == nil)
    }

    @Test("engine and store errors map to the documented application codes")
    func errorMapping() {
        #expect(RPCError.from(ClientError.unknownContact(try! AccountAddress("x@y:1"))).code == .userError)
        #expect(RPCError.from(ClientError.network("refused")).code == .relayOrNetwork)
        #expect(RPCError.from(ClientError.relay(status: 500, code: "x", message: "y")).code == .relayOrNetwork)
        #expect(RPCError.from(ClientError.identityChanged(try! AccountAddress("x@y:1"))).code == .untrustedIdentity)
        #expect(RPCError.from(ClientError.rateLimited).code == .rateLimited)
        #expect(RPCError.from(CancellationError()).code == .unexpected)
        // The codes are the negated exit statuses of parley(1).
        for code in [RPCErrorCode.userError, .unexpected, .relayOrNetwork, .untrustedIdentity, .rateLimited] {
            #expect((1...5).contains(-code.rawValue))
        }
    }
}
