import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore
import Testing

/// Which conversation a received content is filed under (`Engine.filingPlan`): a peer's under the peer, a
/// copy from this account's own device under its `destination` — and a destination that names no account
/// under nothing.
@Suite struct ConversationFilingTests {
    let own = "me@relay.test", peer = "bob@relay.test"
    let accountKey = Ed25519.KeyPair(), deviceKey = Ed25519.KeyPair()

    func received(from address: String, destination: String, body: Content.Body) -> ReceivedMessage {
        let certificate = SenderCertificate.issue(address: address, accountKey: accountKey, deviceId: 2, deviceKey: deviceKey.publicKey,
                                                  expiresAt: 1_900_000_000_000)
        let content = Content(messageId: Content.newMessageId(), sentAt: 1, destination: destination, body: body)
        return ReceivedMessage(sender: DeviceAddress(address: address, deviceId: 2), certificate: certificate,
                               content: content.encoded, startedSession: false)
    }

    func plan(_ messages: [ReceivedMessage]) -> (filings: [InboxFiling], pending: [FilingOutcome]) {
        Engine.filingPlan(messages.enumerated().map { (Int64($0.offset + 1), $0.element) }, ownAddress: try! AccountAddress(own), now: 5)
    }

    @Test func messagesAndEventsCarryTheirConversation() throws {
        let bob = ConversationId.direct(try AccountAddress(peer))
        let (filings, pending) = plan([
            received(from: peer, destination: own, body: .text("hello")),
            received(from: own, destination: peer, body: .text("sent from my laptop")),
            received(from: peer, destination: own, body: .typing(started: true)),
            received(from: own, destination: peer, body: .receipt(read: true, messageIds: [[UInt8](repeating: 1, count: 16)])),
        ])
        #expect(filings[0].message?.conversation == bob)
        #expect(filings[0].message?.direction == .incoming)
        #expect(filings[1].message?.conversation == bob)
        #expect(filings[1].message?.direction == .outgoing)
        guard case .event(.typing(let conversation, let from, true)) = pending[2] else { Issue.record("\(pending[2])"); return }
        #expect(conversation == bob && from.description == peer)
        guard case .event(.readElsewhere(let read, _)) = pending[3] else { Issue.record("\(pending[3])"); return }
        #expect(read == bob)
    }

    @Test func aCopyWhoseDestinationNamesNoAccountIsUnreadable() {
        let (filings, pending) = plan([received(from: own, destination: "Not An Address", body: .text("where does this go?"))])
        #expect(filings.count == 1 && filings[0].message == nil && filings[0].inboxId == 1)
        guard case .unreadable(let sender) = pending[0] else { Issue.record("\(pending[0])"); return }
        #expect(sender?.description == own)
    }
}
