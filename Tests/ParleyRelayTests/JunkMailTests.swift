import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Mail that no contact sent — garbage, and well-formed envelopes from certificates nobody vouches for —
/// is counted by the receiver, never filed into a conversation.
@Suite("End to end: junk mail is counted, not filed")
struct JunkMailTests {
    @Test("a flood of envelopes from strangers and garbage creates no conversation record; the receiver counts it")
    func floodIsCounted() async throws {
        // Strangers may send plenty here: this is about what reaches the receiver, not the relay's limits.
        try await withRelay(["--rate-limit-strangers", "6000"]) { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "genuine", to: bobAddress)
            try await bob.engine.receivePending()
            let historyBefore = try bob.history(with: aliceAddress)
            let relayClient = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let bobList = try SignedDeviceList(verifying: try await relayClient.account(bobAddress.description).deviceList.bytes)
            let bobKey = await bob.engine.account.device.publicKey

            // Three made-up senders (no such accounts on the relay), each with a well-formed session start,
            // and garbage that does not even open.
            var envelopes: [[UInt8]] = []
            let now = SystemWallClock().nowMilliseconds()
            for sender in 0..<3 {
                let accountKey = Ed25519.KeyPair(), device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
                let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: now)],
                                                 version: 1, accountKey: accountKey)
                let stranger = LocalAccount(address: "junk\(sender)@\(relay.name)", accountKey: accountKey, device: device,
                                            deviceList: list, certificateExpiry: now + 86_400_000)
                let store = InMemorySessionStore(preKeys: .generate(oneTime: 1))
                store.setAccount(KnownAccount(accountKey: bobList.accountKey, deviceList: bobList), for: bobAddress)
                let manager = SessionManager(account: stranger, store: store, bundles: RelayDirectory(relay: relayClient))
                for i in 0..<5 {
                    let sealed = try await manager.send(Content(messageId: Content.newMessageId(), sentAt: now, destination: bobAddress.description,
                                                                body: .text("junk \(i)")), to: bobAddress)
                    envelopes += sealed.map(\.envelope)
                }
            }
            for _ in 0..<15 { envelopes.append([1] + SystemRandom().bytes(200)) }

            let raw = RawHTTP(relay)
            for envelope in envelopes {
                let reply = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: [
                    OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(bobKey.bytes), envelope: Base64Bytes(envelope)),
                ]))
                #expect(reply.status == 204, "\(reply.text)")
            }

            let events = try await bob.engine.receivePending()
            #expect(events.allSatisfy { !$0.isMessage && !$0.isUndecryptable }, "\(events)")
            let counted = events.reduce(0) { if case .discarded(let count, _) = $1 { $0 + count } else { $0 } }
            #expect(counted == envelopes.count)
            #expect(try bob.store.discardedEnvelopes() == envelopes.count)
            #expect(try bob.store.conversations() == [direct(aliceAddress)], "no conversation for any stranger")
            #expect(try bob.history(with: aliceAddress) == historyBefore)
            #expect(try await raw.mailbox(token: try await bob.token()).isEmpty, "counted, then acknowledged")

            // Alice still gets through.
            try await alice.engine.send(text: "still here", to: bobAddress)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine", "still here"])
        }
    }
}
