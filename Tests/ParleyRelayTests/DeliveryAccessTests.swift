import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Delivery access (PROTOCOL.md §13.1): sealed envelopes reach an account only with its delivery access
/// key, which its contacts get inside the session; others show their device token and are charged for it,
/// or share the recipient's small budget for strangers.
@Suite("End to end: delivery access keys")
struct DeliveryAccessTests {
    private func junk(to device: TestDevice) async -> SendRequest {
        let key = await device.engine.account.device.publicKey.bytes
        return SendRequest(messages: [OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key), envelope: Base64Bytes([1] + SystemRandom().bytes(100)))])
    }

    @Test("sealed envelopes without the recipient's access key are refused (401); a contact's, with the key it was given, are accepted")
    func keylessSealedSendsAreRefused() async throws {
        // No budget for strangers at all: what is not sealed with the key must come with a token.
        try await withRelay(["--rate-limit-strangers", "0"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            // First contact goes with Alice's token (same relay); the content carries her key. Bob's reply
            // carries his, and is sealed with hers.
            try await alice.engine.send(text: "hello bob", to: bobAddress)
            try await bob.engine.receivePending()
            try await bob.engine.send(text: "hello alice", to: aliceAddress)
            try await alice.engine.receivePending()
            try await alice.engine.send(text: "sealed now", to: bobAddress)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["hello bob", "sealed now"])
            #expect(try alice.incomingTexts(from: bobAddress) == ["hello alice"])
            let bobKey = try #require(try bob.store.deliveryAccessKey())
            #expect(try alice.store.deliveryAccessKey(of: bobAddress) == bobKey, "Bob's key reached Alice in the session")
            #expect(try bob.store.deliveryAccessKey(of: aliceAddress) == (try alice.store.deliveryAccessKey()))

            let raw = RawHTTP(relay)
            let path = raw.messagesPath(bobAddress.description)
            let send = await junk(to: bob)
            #expect(try await raw.request(.POST, path, json: send).status == 401, "neither key nor token")
            #expect(try await raw.request(.POST, path, json: send, headers: [(DeliveryAccess.header, Data(DeliveryAccess.newKey()).base64EncodedString())]).status == 401,
                    "a wrong key")
            #expect(try await raw.request(.POST, path, json: send, headers: [(DeliveryAccess.header, Data(bobKey.dropLast()).base64EncodedString())]).status == 401,
                    "a key of the wrong length")
            let bobToken = try await bob.token()
            #expect(try await raw.mailbox(token: bobToken).isEmpty, "nothing refused was stored")
            #expect(try await raw.request(.POST, path, json: send, headers: [(DeliveryAccess.header, Data(bobKey).base64EncodedString())]).status == 204,
                    "the key Bob gave his contact")
            #expect(try await raw.request(.POST, path, json: send, token: try await alice.token()).status == 204, "a sender that shows its token")
            #expect(try await raw.mailbox(token: bobToken).count == 2)
        }
    }

    @Test("without key or token, an account takes only a small budget of envelopes (429 after it); its contacts still get through")
    func strangersShareASmallBudget() async throws {
        try await withRelay(["--rate-limit-strangers", "3"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "hi", to: bobAddress)
            try await bob.engine.receivePending()
            try await bob.engine.send(text: "hi back", to: aliceAddress)
            try await alice.engine.receivePending()

            // 3 a minute, a burst of 6.
            let raw = RawHTTP(relay)
            let send = await junk(to: bob)
            var statuses: [Int] = []
            for _ in 0..<20 { statuses.append(try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: send).status) }
            #expect(statuses.filter { $0 == 204 }.count <= 7, "\(statuses)")
            #expect(statuses.suffix(10).allSatisfy { $0 == 429 }, "\(statuses)")

            // Alice, with Bob's key, is not charged to the strangers' budget.
            try await alice.engine.send(text: "still me", to: bobAddress)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["hi", "still me"])
        }
    }

    @Test("a sender that shows its token is charged for what it sends, whoever receives it: a flood from one account gets 429")
    func authenticatedSendersAreRateLimited() async throws {
        // 10 a second, a burst of 20, per account: one send of 20 messages spends a sender's whole budget,
        // while the few authenticated requests of setting up an account (prekeys, the access key's verifier),
        // which are charged per account as well, leave room for the token check of a send.
        try await withRelay(["--rate-limit-account", "10", "--rate-limit-strangers", "0"]) { relay, directory in
            let (alice, bob, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let carol = try await TestDevice.create("carol", on: relay, in: directory)
            let carolAddress = await carol.address
            let raw = RawHTTP(relay)
            func twentyMessages(to device: TestDevice) async -> SendRequest {
                let one = await junk(to: device)
                return SendRequest(messages: Array(repeating: one.messages[0], count: 20))
            }
            let toBob = await twentyMessages(to: bob), toCarol = await twentyMessages(to: carol)
            let aliceToken = try await alice.token(), bobToken = try await bob.token(), carolToken = try await carol.token()
            // Alice sends twenty to Bob and twenty to Carol at the same time: both recipients' budgets are whole,
            // so only her own budget can refuse one of them. Sent together, the two are charged within moments
            // of each other, not a durable store of twenty envelopes apart. Her burst refills in 2 s on the
            // relay's clock: if both were accepted, that is a failure unless the two requests took 2 s or more
            // (a stalled machine), which proves nothing either way; then the attempt is made again once every
            // budget is whole.
            var conclusive = false
            for _ in 1...5 where !conclusive {
                let started = ContinuousClock.now
                async let sentToBob = raw.request(.POST, raw.messagesPath(bobAddress.description), json: toBob, token: aliceToken)
                async let sentToCarol = raw.request(.POST, raw.messagesPath(carolAddress.description), json: toCarol, token: aliceToken)
                let (first, second) = try await (sentToBob, sentToCarol)
                let elapsed = ContinuousClock.now - started
                let statuses = [first.status, second.status]
                if statuses == [204, 204], elapsed >= .seconds(2) {
                    try await Task.sleep(for: .seconds(3))
                    continue
                }
                conclusive = true
                #expect(statuses.sorted() == [204, 429], "\(first.text) \(second.text)")
                // The recipient whose twenty were refused was charged nothing: another sender's twenty reach it.
                guard statuses.contains(429) else { break }
                let refusedBob = first.status == 429
                let byOther = try await raw.request(.POST, raw.messagesPath((refusedBob ? bobAddress : carolAddress).description),
                                                    json: refusedBob ? toBob : toCarol, token: refusedBob ? carolToken : bobToken)
                #expect(byOther.status == 204, "\(byOther.text)")
            }
            #expect(conclusive, "five attempts each took 2 s or more")
        }
    }

    @Test("a contact's key the relay no longer takes (401) is forgotten, and the message goes without it")
    func replacedKeyIsForgotten() async throws {
        try await withRelay(["--rate-limit-strangers", "0"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "one", to: bobAddress)
            try await bob.engine.receivePending()
            try await alice.engine.receivePending()    // Bob's delivery receipt carried his key
            #expect(try alice.store.deliveryAccessKey(of: bobAddress) != nil)

            // Bob's account registers another key (as a restored account without its old one would).
            let raw = RawHTTP(relay)
            let other = DeliveryAccess.verifier(of: DeliveryAccess.newKey())
            #expect(try await raw.request(.PUT, "/v1/delivery-access", json: DeliveryAccessUpdate(verifier: Base64Bytes(other)),
                                          token: try await bob.token()).status == 204)

            try await alice.engine.send(text: "two", to: bobAddress)
            #expect(try alice.store.deliveryAccessKey(of: bobAddress) == nil, "the refused key is forgotten")
            #expect(try alice.store.outboxEntries().isEmpty)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["one", "two"])
        }
    }
}
