import Foundation
import ParleyRelayAPI
import Testing

// The hand-written JSON of a group send or commit (HotJSON+GroupSend.swift) against Foundation's Codable
// path, as HotJSONTests does for the 1:1 bodies: what it writes JSONDecoder reads as the same value, what
// JSONEncoder writes it reads as the same value, and anything else is left to JSONDecoder (nil).

@Suite("Hot-path JSON of group sends")
struct GroupSendJSONTests {
    // Looked up at run time, so that without the codec the tests fail rather than not compiling.
    static func hot() throws -> any HotJSON.Type {
        try #require((GroupSend.self as Any.Type) as? any HotJSON.Type, "GroupSend goes through JSONEncoder and JSONDecoder")
    }

    static func written(_ send: GroupSend) throws -> [UInt8] {
        try #require(send as Any as? any HotJSON).jsonBytes()
    }

    static func fast(_ text: some Collection<UInt8>) throws -> GroupSend? {
        let hot = try hot()
        return Array(text).withUnsafeBytes { hot.init(fastJSON: $0) } as? GroupSend
    }

    static func recipients(_ count: Int, seed: Int) -> [GroupRecipient] {
        (0..<count).map { GroupRecipient(address: "member\(seed)-\($0)@relay.example:8443", deviceId: UInt32($0 == 2 ? UInt32.max : UInt32($0 + 1))) }
    }

    static let sends: [GroupSend] = [
        GroupSend(epoch: 0, message: Base64Bytes([]), recipients: []),
        GroupSend(epoch: 7, message: Base64Bytes(HotJSONTests.bytes(301, seed: 1)), recipients: recipients(5, seed: 1)),
        GroupSend(epoch: UInt64.max, message: Base64Bytes(HotJSONTests.bytes(1000, seed: 2)), recipients: recipients(3, seed: 2),
                  nextVerifier: Base64Bytes(HotJSONTests.bytes(32, seed: 3))),
        GroupSend(epoch: 12, message: Base64Bytes(HotJSONTests.bytes(2000, seed: 4)), recipients: recipients(4, seed: 4),
                  nextVerifier: Base64Bytes(HotJSONTests.bytes(32, seed: 5)), groupInfo: Base64Bytes(HotJSONTests.bytes(3001, seed: 6)),
                  rejoiners: recipients(6, seed: 6),
                  welcome: GroupWelcome(message: Base64Bytes(HotJSONTests.bytes(4002, seed: 7)), recipients: recipients(2, seed: 7))),
        GroupSend(epoch: 1, message: Base64Bytes([1]), recipients: recipients(1, seed: 8), nextVerifier: Base64Bytes([2, 3]),
                  welcome: GroupWelcome(message: Base64Bytes([4, 5, 6, 7]), recipients: [])),
        // An address is the sender's to write: quotes, backslashes, controls and non-ASCII must round-trip.
        GroupSend(epoch: 3, message: Base64Bytes([9]), recipients: [GroupRecipient(address: "a\"b\\c\u{1}\n é 😀/@x", deviceId: 1)]),
    ]

    /// Every field of `GroupSend`, so that equality here covers them all.
    static func fields(_ send: GroupSend) -> [String] {
        [String(send.epoch), Data(send.message.bytes).base64EncodedString(), "\(send.recipients)",
         send.nextVerifier.map { Data($0.bytes).base64EncodedString() } ?? "-", send.groupInfo.map { Data($0.bytes).base64EncodedString() } ?? "-",
         send.rejoiners.map { "\($0)" } ?? "-",
         send.welcome.map { Data($0.message.bytes).base64EncodedString() + "\($0.recipients)" } ?? "-"]
    }

    @Test("the hand-written codec knows every field of GroupSend and GroupWelcome (a new field must be added to it)")
    func coversEveryField() {
        let full = Self.sends[3]
        #expect(Mirror(reflecting: full).children.compactMap(\.label).sorted()
                == ["epoch", "groupInfo", "message", "nextVerifier", "recipients", "rejoiners", "welcome"])
        #expect(Mirror(reflecting: full.welcome!).children.compactMap(\.label).sorted() == ["message", "recipients"])
        #expect(Mirror(reflecting: full.recipients[0]).children.compactMap(\.label).sorted() == ["address", "deviceId"])
    }

    @Test("what it writes, JSONDecoder reads as the same value; it reads its own writing back")
    func writesWhatCodableReads() throws {
        for send in Self.sends {
            let written = try Self.written(send)
            let decoded = try JSONDecoder().decode(GroupSend.self, from: Data(written))
            #expect(Self.fields(decoded) == Self.fields(send))
            let escaped = send.recipients.contains { $0.address.utf8.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } }
            if escaped {
                #expect(try Self.fast(written) == nil)
            } else {
                let fast = try #require(try Self.fast(written))
                #expect(Self.fields(fast) == Self.fields(send))
            }
        }
    }

    @Test("what JSONEncoder writes, it reads as the same value or leaves to JSONDecoder")
    func readsWhatCodableWrites() throws {
        let plain = JSONEncoder(), unescaped = JSONEncoder(), pretty = JSONEncoder()
        unescaped.outputFormatting = .withoutEscapingSlashes
        pretty.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes, .sortedKeys]
        for send in Self.sends {
            if let fast = try Self.fast(try plain.encode(send)) { #expect(Self.fields(fast) == Self.fields(send)) }
            for encoder in [unescaped, pretty] {
                let encoded = try encoder.encode(send)
                if let fast = try Self.fast(encoded) {
                    #expect(Self.fields(fast) == Self.fields(send))
                } else {
                    #expect(send.recipients.contains { $0.address.contains("\"") }, "only an escaped address is left to JSONDecoder")
                }
            }
        }
    }

    @Test("anything unexpected is left to JSONDecoder", arguments: [
        #"{"epoch":1,"message":"AAAA","recipients":[],"extra":1}"#,                                   // unknown key
        #"{"epoch":1,"message":"AAAA"}"#,                                                             // missing key
        #"{"epoch":1,"recipients":[]}"#,
        #"{"message":"AAAA","recipients":[]}"#,
        #"{"epoch":1,"epoch":2,"message":"AAAA","recipients":[]}"#,                                   // repeated key
        #"{"epoch":1,"message":"AAAA","recipients":[],"nextVerifier":null}"#,                         // explicit null
        #"{"epoch":-1,"message":"AAAA","recipients":[]}"#,
        #"{"epoch":1.5,"message":"AAAA","recipients":[]}"#,
        #"{"epoch":1,"message":"AA\/A","recipients":[]}"#,                                            // an escape
        #"{"epoch":1,"message":"AB==","recipients":[]}"#,                                             // non-zero spare bits
        #"{"epoch":1,"message":"AAAA","recipients":[{"address":"a@b","deviceId":4294967296}]}"#,      // over UInt32
        #"{"epoch":1,"message":"AAAA","recipients":[{"address":"a@b"}]}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[{"address":"a@b","deviceId":1,"x":2}]}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[{"address":"a\u0040b","deviceId":1}]}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[],"welcome":{"message":"AAAA"}}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[],"welcome":{"message":"AAAA","recipients":[],"x":1}}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[],"welcome":null}"#,
        #"{"epoch":1,"message":"AAAA","recipients":[]} x"#,                                           // trailing data
        #"{"epoch":1,"message":"AAAA","recipients":[],}"#,
        #"[]"#,
        "",
    ])
    func leavesTheUnexpected(_ text: String) throws {
        #expect(try Self.fast(Array(text.utf8)) == nil)
    }
}
