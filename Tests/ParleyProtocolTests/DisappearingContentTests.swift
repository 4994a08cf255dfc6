import ParleyCrypto
@testable import ParleyProtocol
import Testing

/// The disappearing-message contents of PROTOCOL.md §12: type 0x09 (a conversation's timer) and the
/// expire-timer flag 0x40 (the timer a message was sent under), checked against the bytes the document gives.
@Suite struct DisappearingContentTests {
    let id = (0..<16).map(UInt8.init)
    let sentAt: UInt64 = 1_800_000_000_000
    let bob = "bob@127.0.0.1:7001"

    @Test("the §12 vectors: a timer of one hour, and a text sent under it")
    func vectors() throws {
        let timer = Content(messageId: id, sentAt: sentAt, destination: bob, body: .disappearingTimer(seconds: 3600))
        #expect(hex(timer.encoded) == "0109000102030405060708090a0b0c0d0e0f000001a3185c50000012626f62403132372e302e302e313a3730303100000e10")
        let text = Content(messageId: id, sentAt: sentAt, destination: bob, body: .text("hi"), expireTimer: 3600)
        #expect(hex(text.encoded)
            == "0141000102030405060708090a0b0c0d0e0f000001a3185c50000012626f62403132372e302e302e313a3730303100000002686900000e10")
        #expect(try Content(decoding: timer.encoded) == timer)
        #expect(try Content(decoding: text.encoded) == text)
        #expect(try Content(decoding: text.encoded).expireTimer == 3600)
        // Off is a timer of 0; a message without a timer has no flag and no field.
        #expect(try Content(decoding: Content(messageId: id, sentAt: sentAt, destination: bob, body: .disappearingTimer(seconds: 0)).encoded).body
            == .disappearingTimer(seconds: 0))
        #expect(Content(messageId: id, sentAt: sentAt, destination: bob, body: .text("hi"), expireTimer: 0).encoded[1] == 0x01)
    }

    @Test("the timer travels with the delivery access key, in its place before the key")
    func withDeliveryAccess() throws {
        let key = [UInt8](repeating: 9, count: DeliveryAccess.keyLength)
        let content = Content(messageId: id, sentAt: sentAt, destination: bob, body: .text("hi"), expireTimer: 60).carrying(deliveryAccess: key)
        #expect(content.encoded[1] == 0xC1)
        #expect(Array(content.encoded.suffix(36)) == [0, 0, 0, 60] + key)
        let decoded = try Content(decoding: content.encoded)
        #expect(decoded.expireTimer == 60 && decoded.deliveryAccess == key)
    }

    @Test("malformed: a flagged timer of 0, a timer cut short, a timer content without its seconds")
    func malformed() {
        var zero = Content(messageId: id, sentAt: sentAt, destination: bob, body: .text("hi"), expireTimer: 5).encoded
        zero.replaceSubrange(zero.count - 4..<zero.count, with: [0, 0, 0, 0])
        #expect(throws: ProtocolError.self) { try Content(decoding: zero) }
        let cut = Content(messageId: id, sentAt: sentAt, destination: bob, body: .text("hi"), expireTimer: 5).encoded.dropLast(2)
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(cut)) }
        let bare = Content(messageId: id, sentAt: sentAt, destination: bob, body: .disappearingTimer(seconds: 5)).encoded.dropLast(4)
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(bare)) }
    }
}
