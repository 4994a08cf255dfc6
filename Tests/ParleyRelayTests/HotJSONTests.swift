import Foundation
import ParleyRelayAPI
import Testing

// The hand-written JSON of the hot bodies (HotJSON.swift) against Foundation's Codable path: what it writes
// JSONDecoder reads as the same value, what JSONEncoder writes it reads as the same value, and everything
// it does not expect it leaves to JSONDecoder (nil), never reading it as something else.

@Suite("Hot-path JSON")
struct HotJSONTests {
    /// Deterministic pseudo-random bytes (the test must not depend on the run).
    static func bytes(_ count: Int, seed: Int) -> [UInt8] {
        var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func fast<T: HotJSON>(_ type: T.Type, _ text: some Collection<UInt8>) -> T? {
        Array(text).withUnsafeBytes { T(fastJSON: $0) }
    }

    static let sends: [SendRequest] = [
        SendRequest(messages: []),
        SendRequest(messages: (0..<5).map { OutgoingMessage(deviceId: UInt32($0 == 4 ? UInt32.max : UInt32($0)),
                                                             deviceKey: Base64Bytes(bytes(32, seed: $0)),
                                                             envelope: Base64Bytes(bytes(595 + $0, seed: 100 + $0))) }),
        SendRequest(messages: [OutgoingMessage(deviceId: 0, deviceKey: Base64Bytes([]), envelope: Base64Bytes([0xFF]))]),
    ]

    static let pages: [FetchResponse] = [
        FetchResponse(messages: [], more: false, preKeysLow: true),
        FetchResponse(messages: (0..<7).map { QueuedMessage(id: String(1_000_000 + $0), envelope: Base64Bytes(bytes($0 * 97, seed: $0)),
                                                            receivedAt: $0 == 6 ? UInt64.max : 1_764_000_000_000 + UInt64($0)) },
                      more: true, preKeysLow: false),
        // An id is the relay's to choose: quotes, backslashes, controls and non-ASCII must round-trip.
        FetchResponse(messages: [QueuedMessage(id: "a\"b\\c\u{1}\n é 😀/", envelope: Base64Bytes([1, 2]), receivedAt: 0)], more: false, preKeysLow: false),
    ]

    @Test("what it writes, JSONDecoder reads as the same value; it reads its own writing back")
    func writesWhatCodableReads() throws {
        for send in Self.sends {
            let written = send.jsonBytes()
            let decoded = try JSONDecoder().decode(SendRequest.self, from: Data(written))
            #expect(decoded.messages == send.messages)
            #expect(Self.fast(SendRequest.self, written)?.messages == send.messages)
        }
        for page in Self.pages {
            let written = page.jsonBytes()
            let decoded = try JSONDecoder().decode(FetchResponse.self, from: Data(written))
            #expect(decoded.messages == page.messages && decoded.more == page.more && decoded.preKeysLow == page.preKeysLow)
            // An id that needs escapes is written escaped, and such a page is left to JSONDecoder.
            let escaped = page.messages.contains { $0.id.utf8.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } }
            if escaped {
                #expect(Self.fast(FetchResponse.self, written) == nil)
            } else {
                let fast = try #require(Self.fast(FetchResponse.self, written))
                #expect(fast.messages == page.messages && fast.more == page.more && fast.preKeysLow == page.preKeysLow)
            }
        }
        let ack = AckRequest(ids: ["1", "22", "333"])
        #expect(try JSONDecoder().decode(AckRequest.self, from: Data(ack.jsonBytes())).ids == ack.ids)
        #expect(Self.fast(AckRequest.self, ack.jsonBytes())?.ids == ack.ids)
    }

    @Test("what JSONEncoder writes, it reads as the same value or leaves to JSONDecoder")
    func readsWhatCodableWrites() throws {
        for send in Self.sends {
            let encoded = try JSONEncoder().encode(send)
            // JSONEncoder escapes "/" inside base64 ("\/"): such a body goes to JSONDecoder.
            if let fast = Self.fast(SendRequest.self, encoded) { #expect(fast.messages == send.messages) }
            let unescaped = try JSONEncoder.withoutEscapingSlashes.encode(send)
            #expect(Self.fast(SendRequest.self, unescaped)?.messages == send.messages)
        }
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        let page = Self.pages[1]
        #expect(Self.fast(FetchResponse.self, try pretty.encode(page))?.messages == page.messages)
    }

    @Test("anything unexpected is left to JSONDecoder", arguments: [
        #"{"messages":[{"deviceId":1,"deviceKey":"AAAA","envelope":"AAAA","extra":1}]}"#,    // unknown key
        #"{"messages":[{"deviceId":1,"deviceKey":"AAAA"}]}"#,                                 // missing key
        #"{"messages":[{"deviceId":1,"deviceId":2,"deviceKey":"AAAA","envelope":"AAAA"}]}"#,  // repeated key
        #"{"messages":[{"deviceId":4294967296,"deviceKey":"AAAA","envelope":"AAAA"}]}"#,      // over UInt32
        #"{"messages":[{"deviceId":-1,"deviceKey":"AAAA","envelope":"AAAA"}]}"#,
        #"{"messages":[{"deviceId":1.0,"deviceKey":"AAAA","envelope":"AAAA"}]}"#,
        #"{"messages":[{"deviceId":01,"deviceKey":"AAAA","envelope":"AAAA"}]}"#,
        #"{"messages":[{"deviceId":1,"deviceKey":"AA\/A","envelope":"AAAA"}]}"#,              // an escape
        #"{"messages":[{"deviceId":1,"deviceKey":"AAA","envelope":"AAAA"}]}"#,                // not a multiple of 4
        #"{"messages":[{"deviceId":1,"deviceKey":"AB==","envelope":"AAAA"}]}"#,               // non-zero spare bits
        #"{"messages":[{"deviceId":1,"deviceKey":"A===","envelope":"AAAA"}]}"#,
        #"{"messages":[{"deviceId":1,"deviceKey":"A=AA","envelope":"AAAA"}]}"#,
        #"{"messages":[{"deviceId":1,"deviceKey":"AA-_","envelope":"AAAA"}]}"#,               // URL alphabet
        #"{"messages":[{"deviceId":"1","deviceKey":"AAAA","envelope":"AAAA"}]}"#,             // wrong type
        #"{"messages":[]} x"#,                                                                // trailing data
        #"{"messages":[],}"#,
        #"{"messages":[}"#,
        #"{"messages":null}"#,
        #"[]"#,
        "",
    ])
    func leavesTheUnexpected(_ text: String) {
        #expect(Self.fast(SendRequest.self, Array(text.utf8)) == nil)
    }

    @Test("pages: an escaped id, a missing flag or a string where a number belongs are left to JSONDecoder", arguments: [
        #"{"messages":[{"id":"a\"b","envelope":"","receivedAt":1}],"more":false,"preKeysLow":false}"#,
        #"{"messages":[],"more":false}"#,
        #"{"messages":[{"id":"1","envelope":"","receivedAt":"1"}],"more":false,"preKeysLow":false}"#,
        #"{"messages":[{"id":"1","envelope":"","receivedAt":18446744073709551616}],"more":false,"preKeysLow":false}"#,
        #"{"messages":[],"more":fals,"preKeysLow":false}"#,
    ])
    func leavesUnexpectedPages(_ text: String) {
        #expect(Self.fast(FetchResponse.self, Array(text.utf8)) == nil)
    }

    @Test("base64 of every length from 0 to 300 bytes reads back as Foundation's decoding of it")
    func base64AgainstFoundation() throws {
        for count in 0...300 {
            let data = Self.bytes(count, seed: count)
            let send = SendRequest(messages: [OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(data), envelope: Base64Bytes(data))])
            let written = send.jsonBytes()
            let text = try #require(String(bytes: written, encoding: .utf8))
            #expect(text.contains("\"" + Data(data).base64EncodedString() + "\""))
            #expect(Self.fast(SendRequest.self, written)?.messages.first?.envelope.bytes == data)
        }
    }
}

extension JSONEncoder {
    fileprivate static var withoutEscapingSlashes: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        return encoder
    }
}
