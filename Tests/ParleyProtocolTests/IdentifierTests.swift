import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// MessageId and ConversationId: each checked once, where it is made.
@Suite struct IdentifierTests {
    @Test func messageIdsAreSixteenBytes() throws {
        let hex = "00112233445566778899aabbccddeeff"
        #expect(MessageId(hex: hex)?.bytes == Hex.decode(hex))
        #expect(MessageId(hex: hex)?.hex == hex)
        #expect(MessageId(hex: hex.uppercased())?.hex == hex)
        for bad in ["", String(hex.dropLast()), String(hex.dropLast(2)), hex + "00", "zz" + hex.dropFirst(2), "not hex at all"] {
            #expect(MessageId(hex: bad) == nil, "\(bad)")
        }
        #expect(throws: ProtocolError.self) { try MessageId([UInt8](repeating: 1, count: 15)) }
        #expect(try MessageId([UInt8](repeating: 1, count: 16)).bytes.count == 16)
        #expect(MessageId.random().bytes.count == MessageId.length)
        #expect(MessageId.random() != MessageId.random())
    }

    @Test func aContentWithAShortMessageIdDoesNotDecode() throws {
        let content = Content(messageId: [UInt8](repeating: 7, count: 16), sentAt: 1, destination: "bob@relay.test", body: .text("hi"))
        #expect(try Content(decoding: content.encoded) == content)
        // Cut inside the id: the decoder refuses, it never reads past the end.
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(content.encoded.prefix(2 + 10))) }
    }

    @Test func aContentNamesItsConversationByTheSameBytesAsBefore() throws {
        let bob = ConversationId.direct(try AccountAddress("bob@relay.test:8443"))
        let typed = Content(messageId: [UInt8](repeating: 7, count: 16), sentAt: 1, conversation: bob, body: .typing(started: true))
        let text = Content(messageId: [UInt8](repeating: 7, count: 16), sentAt: 1, destination: "bob@relay.test:8443", body: .typing(started: true))
        #expect(typed.encoded == text.encoded)     // protocol v2's `destination` is unchanged
        #expect(try Content(decoding: text.encoded).conversation == bob)
        let odd = Content(messageId: [UInt8](repeating: 7, count: 16), sentAt: 1, destination: "Not An Address", body: .typing(started: true))
        #expect(try Content(decoding: odd.encoded).conversation == nil)   // decodes as before; names no conversation
    }
}

/// PROTOCOL.md §17.6's vector: a group-name content (type 0x0A) inside a group's MLS message.
@Test func groupNameContentMatchesTheVector() throws {
    let id = try GroupId([UInt8](repeating: 0xab, count: 32))
    let content = Content(messageId: [UInt8](repeating: 0x11, count: 16), sentAt: 0x0000019000000000, conversation: .group(id), body: .groupName("Trip"))
    let vector = "010a111111111111111111111111111111110000019000000000004667726f75703a"
        + String(repeating: "6162", count: 32) + "000454726970"
    #expect(Hex.encode(content.encoded) == vector)
    #expect(try Content(decoding: content.encoded) == content)
    #expect(content.conversation == .group(id))
}
