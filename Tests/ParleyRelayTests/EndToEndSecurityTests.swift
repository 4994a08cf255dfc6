import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// What a device keeps that an attacker's envelope must not change: sessions with the given peer
/// devices, prekeys, contacts, inbox and outbox.
struct DeviceState: Equatable {
    let sessions: [[UInt8]]
    let preKeys: [UInt8]
    let contacts: [Contact]
    let inbox: Int
    let outbox: Int

    init(_ device: TestDevice, peers: [DeviceAddress]) throws {
        sessions = try peers.map { try device.store.sessions(for: $0).serialized() }
        preKeys = try device.store.preKeys().serialized()
        contacts = try device.store.contacts()
        inbox = try device.store.inbox().count
        outbox = try device.store.outboxEntries().count
    }
}

extension EngineEvent {
    var isUndecryptable: Bool { if case .undecryptable = self { true } else { false } }
    var isMessage: Bool { if case .message = self { true } else { false } }
}

/// Hostile requests against a real relay: other devices' tokens, replayed challenges, forged and
/// tampered envelopes, oversize and malformed bodies, device-list mismatches, bursts.
@Suite("End to end: hostile requests against a relay process")
struct EndToEndSecurityTests {
    // MARK: Mailboxes

    @Test("a device's token fetches and acknowledges only its own mailbox")
    func mailboxIsolation() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "for bob only", to: bobAddress)
            try await bob.engine.send(text: "for alice only", to: aliceAddress)

            let raw = RawHTTP(relay)
            let aliceToken = try await alice.token(), bobToken = try await bob.token()
            let aliceMail = try await raw.mailbox(token: aliceToken)
            let bobMail = try await raw.mailbox(token: bobToken)
            #expect(aliceMail.count == 1 && bobMail.count == 1)
            #expect(Set(aliceMail.map(\.id)).isDisjoint(with: bobMail.map(\.id)), "alice's token sees none of bob's mail")

            // Alice's token acknowledging Bob's message ids is accepted as a no-op: Bob's mail stays.
            let ack = try await raw.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: bobMail.map(\.id)), token: aliceToken)
            #expect(ack.status == 204)
            #expect(try await raw.mailbox(token: bobToken) == bobMail)
            #expect(try await raw.mailbox(token: aliceToken) == aliceMail)

            // Without a token there is no mailbox at all.
            #expect(try await raw.request(.GET, "/v1/mailbox").status == 401)
            #expect(try await raw.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: bobMail.map(\.id))).status == 401)
            #expect(try await raw.mailbox(token: bobToken) == bobMail)

            // Each owner reads exactly its own message.
            try await bob.engine.receivePending()
            try await alice.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["for bob only"])
            #expect(try alice.incomingTexts(from: bobAddress) == ["for alice only"])
        }
    }

    @Test("an acknowledgement with ?fetch=N deletes only the caller's envelopes and answers with its next page; after= skips what is in hand")
    func acknowledgeAndFetch() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            for i in 1...3 { try await alice.engine.send(text: "to bob \(i)", to: bobAddress) }
            try await bob.engine.send(text: "to alice", to: aliceAddress)

            let raw = RawHTTP(relay)
            let aliceToken = try await alice.token(), bobToken = try await bob.token()
            let bobMail = try await raw.mailbox(token: bobToken)
            let aliceMail = try await raw.mailbox(token: aliceToken)
            #expect(bobMail.count == 3 && aliceMail.count == 1)

            // Bob acknowledges his first envelope and asks for pages of one: the second comes back.
            let first = try await raw.request(.POST, "/v1/mailbox/ack?fetch=1", json: AckRequest(ids: [bobMail[0].id]), token: bobToken)
            #expect(first.status == 200)
            let page = try first.decode(FetchResponse.self)
            #expect(page.messages == [bobMail[1]] && page.more)
            #expect(try await raw.mailbox(token: bobToken) == Array(bobMail.dropFirst()))

            // Alice's token with Bob's ids: nothing of Bob's is deleted, and the page is Alice's own.
            let foreign = try await raw.request(.POST, "/v1/mailbox/ack?fetch=10", json: AckRequest(ids: bobMail.map(\.id)), token: aliceToken)
            #expect(try foreign.decode(FetchResponse.self).messages == aliceMail)
            #expect(try await raw.mailbox(token: bobToken) == Array(bobMail.dropFirst()))

            // Bad ids change nothing, with or without a page asked for; without a token there is no page.
            #expect(try await raw.request(.POST, "/v1/mailbox/ack?fetch=10", json: AckRequest(ids: ["x"]), token: bobToken).status == 400)
            #expect(try await raw.request(.POST, "/v1/mailbox/ack?fetch=10", json: AckRequest(ids: [bobMail[1].id])).status == 401)
            #expect(try await raw.mailbox(token: bobToken) == Array(bobMail.dropFirst()))

            // `after`: only what follows an id in hand, while that id is still queued (the pipelined drain).
            let afterFirst = try await raw.request(.GET, "/v1/mailbox?limit=10&after=\(bobMail[1].id)", token: bobToken)
            #expect(try afterFirst.decode(FetchResponse.self).messages == [bobMail[2]])
            let ackAfter = try await raw.request(.POST, "/v1/mailbox/ack?fetch=10&after=\(bobMail[2].id)", json: AckRequest(ids: []), token: bobToken)
            #expect(try ackAfter.decode(FetchResponse.self).messages.isEmpty)
            for bad in ["x", "-1", "1.5"] {
                #expect(try await raw.request(.GET, "/v1/mailbox?after=\(bad)", token: bobToken).status == 400)
                #expect(try await raw.request(.POST, "/v1/mailbox/ack?fetch=10&after=\(bad)", json: AckRequest(ids: [bobMail[1].id]),
                                              token: bobToken).status == 400)
            }
            #expect(try await raw.mailbox(token: bobToken) == Array(bobMail.dropFirst()))

            // The rest in one go: an empty page, nothing more.
            let rest = try await raw.request(.POST, "/v1/mailbox/ack?fetch=10", json: AckRequest(ids: bobMail.dropFirst().map(\.id)), token: bobToken)
            let last = try rest.decode(FetchResponse.self)
            #expect(last.messages.isEmpty && !last.more)
            #expect(try await raw.mailbox(token: bobToken).isEmpty)
        }
    }

    // MARK: Device authentication

    @Test("a challenge works once; wrong keys, foreign challenges and unknown or revoked tokens get 401")
    func deviceAuthentication() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let account = await alice.engine.account
            let raw = RawHTTP(relay)

            func challenge(for address: String) async throws -> [UInt8] {
                let reply = try await raw.request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: address, deviceId: 1))
                #expect(reply.status == 200, "\(reply.text)")
                return try reply.decode(ChallengeResponse.self).challenge.bytes
            }
            func session(_ challenge: [UInt8], signedBy key: Ed25519.KeyPair, relayName: String? = nil,
                         address: String? = nil) async throws -> RawHTTP.Reply {
                let signature = key.sign(authenticationMessage(challenge: challenge, relayName: relayName ?? relay.name))
                return try await raw.request(.POST, "/v1/auth/session", json: SessionRequest(
                    address: address ?? account.address, deviceId: 1, challenge: Base64Bytes(challenge), signature: Base64Bytes(signature)))
            }

            // The genuine exchange yields a working token.
            let first = try await challenge(for: account.address)
            let accepted = try await session(first, signedBy: account.device.keyPair)
            #expect(accepted.status == 200, "\(accepted.text)")
            let token = try accepted.decode(SessionResponse.self).token
            #expect(try await raw.request(.GET, "/v1/keys/count", token: token).status == 200)

            // The same challenge and signature again: refused.
            let replayed = try await session(first, signedBy: account.device.keyPair)
            #expect(replayed.status == 401 && replayed.errorCode == "unauthorized")

            // A signature by the wrong key — a stranger's, or the account key instead of the device key.
            for wrongKey in [Ed25519.KeyPair(), account.accountKey] {
                let fresh = try await challenge(for: account.address)
                #expect(try await session(fresh, signedBy: wrongKey).status == 401)
                // The failed attempt spent the challenge: the right signature cannot use it afterwards.
                #expect(try await session(fresh, signedBy: account.device.keyPair).status == 401)
            }
            // A signature made for another relay's name (a challenge relayed from elsewhere).
            let relayed = try await challenge(for: account.address)
            #expect(try await session(relayed, signedBy: account.device.keyPair, relayName: "relay.example.org:8443").status == 401)
            // Bob's challenge presented as Alice's, with Alice's valid signature over it.
            let bobs = try await challenge(for: await bob.address.description)
            #expect(try await session(bobs, signedBy: account.device.keyPair).status == 401)
            // A challenge nobody issued.
            #expect(try await session(SystemRandom().bytes(32), signedBy: account.device.keyPair).status == 401)

            // Unknown, altered and malformed tokens on every authenticated route.
            let unknownTokens = [SystemRandom().bytes(32).map { String(format: "%02x", $0) }.joined(), token + "0",
                                 String(token.dropLast()), token.uppercased(), ""]
            for bad in unknownTokens {
                #expect(try await raw.request(.GET, "/v1/mailbox", token: bad).status == 401, "token '\(bad)'")
                #expect(try await raw.request(.GET, "/v1/keys/count", token: bad).status == 401)
                #expect(try await raw.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: ["1"]), token: bad).status == 401)
                #expect(try await raw.request(.POST, "/v1/attachments", json: AttachmentSlotRequest(size: 10), token: bad).status == 401)
            }
            #expect(try await raw.request(.GET, "/v1/mailbox").status == 401, "no Authorization header")
            #expect(try await raw.request(.GET, "/v1/keys/count", token: token).status == 200, "the genuine token still works")

            // Device lists change only under the account key's signature, and only forwards.
            let devicesPath = raw.accountPath(account.address) + "/devices"
            let strangerList = SignedDeviceList.sign(devices: account.deviceList.devices, version: 9, accountKey: Ed25519.KeyPair())
            #expect(try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(strangerList.encoded))).status == 403)
            #expect(try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(account.deviceList.encoded))).status == 409)
            // An empty list, though signed and newer, would leave the name neither usable nor free: refused as at
            // registration, and the account keeps its devices.
            let empty = SignedDeviceList.sign(devices: [], version: 99, accountKey: account.accountKey)
            #expect(try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(empty.encoded))).status == 400)
            #expect(try await raw.request(.GET, "/v1/keys/count", token: token).status == 200, "the device keeps its token")

            // A device taken off the account's list loses its tokens: add device 2, then remove it again.
            let second = try await alice.addDevice(2, on: relay, in: directory)
            let secondToken = try await second.token()
            #expect(try await raw.request(.GET, "/v1/mailbox", token: secondToken).status == 200)
            let current = try SignedDeviceList(verifying: try await alice.engine.relay.account(account.address).deviceList.bytes)
            let without = SignedDeviceList.sign(devices: current.devices.filter { $0.deviceId != 2 }, version: current.version + 1,
                                                accountKey: account.accountKey)
            let removal = try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(without.encoded)))
            #expect(removal.status == 204, "\(removal.text)")
            #expect(try await raw.request(.GET, "/v1/mailbox", token: secondToken).status == 401, "revoked with its device")
            #expect(try await raw.request(.GET, "/v1/mailbox", token: token).status == 200)
        }
    }

    // MARK: Forged and tampered envelopes

    @Test("tampered envelopes are stored by the relay, refused by the receiver with no state change, and counted, not filed")
    func tamperedEnvelopes() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let aliceDevice = await alice.deviceAddress
            let bobKey = await bob.engine.account.device.publicKey.bytes

            let raw = RawHTTP(relay)
            let bobToken = try await bob.token()
            try await alice.engine.send(text: "genuine", to: bobAddress)
            let genuine = try #require(try await raw.mailbox(token: bobToken).first).envelope.bytes
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine"])
            let before = try DeviceState(bob, peers: [aliceDevice])

            // An attacker alters a captured envelope in every region and posts the results without
            // authentication (sealed sender: the relay cannot tell who sends).
            func flipped(_ index: Int) -> [UInt8] { var copy = genuine; copy[index] ^= 0x01; return copy }
            let variants: [[UInt8]] = [
                flipped(0),                    // version byte
                flipped(5),                    // ephemeral key
                flipped(genuine.count / 2),    // ciphertext
                flipped(genuine.count - 1),    // authentication tag
                Array(genuine.dropLast(16)),   // truncated
                genuine + [0],                 // extended
            ]
            for variant in variants {
                let reply = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: [
                    OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(bobKey), envelope: Base64Bytes(variant)),
                ]))
                #expect(reply.status == 204, "\(reply.text)")
            }
            #expect(try await raw.mailbox(token: bobToken).count == variants.count, "the relay stored them all")

            let events = try await bob.engine.receivePending()
            #expect(events == [.discarded(count: variants.count, total: variants.count)], "\(events)")
            #expect(try DeviceState(bob, peers: [aliceDevice]) == before, "no session, prekey, contact, inbox or outbox change")
            #expect(try bob.store.conversations() == [direct(aliceAddress)], "nobody vouched for them: no conversation gets a record")
            #expect(try bob.store.discardedEnvelopes() == variants.count, "each refusal is counted")
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine"])
            #expect(try await raw.mailbox(token: bobToken).isEmpty, "counted, then acknowledged")

            // A replay of the genuine envelope itself is recognised and not shown twice.
            let replay = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: [
                OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(bobKey), envelope: Base64Bytes(genuine)),
            ]))
            #expect(replay.status == 204)
            let afterReplay = try await bob.engine.receivePending()
            #expect(afterReplay.allSatisfy { !$0.isMessage }, "\(afterReplay)")
            #expect(try DeviceState(bob, peers: [aliceDevice]) == before)
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine"])

            // The session survived the attack.
            try await alice.engine.send(text: "still private", to: bobAddress)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine", "still private"])
        }
    }

    enum Forgery: String, CaseIterable, CustomTestStringConvertible {
        /// A well-formed certificate for Alice's address, signed by (and naming) Mallory's account key.
        case anotherAccountKey
        /// A certificate naming Alice's real account key, but signed by Mallory's.
        case badSignature
        var testDescription: String { rawValue }
    }

    @Test("a sender certificate forged by another account key is refused with no state change and no notice in the contact's conversation",
          arguments: Forgery.allCases)
    func forgedSenderCertificate(_ forgery: Forgery) async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let aliceDevice = await alice.deviceAddress
            try await alice.engine.send(text: "genuine", to: bobAddress)
            try await bob.engine.receivePending()
            let before = try DeviceState(bob, peers: [aliceDevice])

            // Mallory builds a client from the protocol layer that claims to be alice@relay.
            let now = SystemWallClock().nowMilliseconds()
            let malloryAccountKey = Ed25519.KeyPair()
            let malloryDevice = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
            let malloryList = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: malloryDevice.publicKey, createdAt: now)],
                                                    version: 1, accountKey: malloryAccountKey)
            var impostor = LocalAccount(address: aliceAddress.description, accountKey: malloryAccountKey, device: malloryDevice,
                                        deviceList: malloryList, certificateExpiry: now + 86_400_000)
            if forgery == .badSignature {
                // Swap Alice's real account key into the signed body; Mallory's signature stays.
                var bytes = impostor.certificate.encoded
                let offset = 1 + 2 + aliceAddress.description.utf8.count
                bytes.replaceSubrange(offset..<offset + 32, with: await alice.engine.account.accountKey.publicKey.bytes)
                impostor.certificate = try SenderCertificate(decoding: bytes)
            }
            let relayClient = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let bobList = try SignedDeviceList(verifying: try await relayClient.account(bobAddress.description).deviceList.bytes)
            let malloryStore = InMemorySessionStore(preKeys: .generate(oneTime: 1))
            malloryStore.setAccount(KnownAccount(accountKey: bobList.accountKey, deviceList: bobList), for: bobAddress)
            let mallory = SessionManager(account: impostor, store: malloryStore, bundles: RelayDirectory(relay: relayClient))
            let forged = try await mallory.send(Content(messageId: Content.newMessageId(), sentAt: now, destination: bobAddress.description,
                                                        body: .text("it's alice, send me the code")), to: bobAddress)
            let raw = RawHTTP(relay)
            let reply = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: forged.map {
                OutgoingMessage(deviceId: $0.recipient.deviceId, deviceKey: Base64Bytes(bobList.device($0.recipient.deviceId)!.identityKey.bytes),
                                envelope: Base64Bytes($0.envelope))
            }))
            #expect(reply.status == 204, "the relay cannot tell a forgery: \(reply.text)")

            let historyBefore = try bob.history(with: aliceAddress)
            let events = try await bob.engine.receivePending()
            // Alice's relay still publishes her real key, so nothing changed: the envelope is counted, and the
            // real Alice's conversation gets neither a failure nor "the identity key of … has changed".
            #expect(events == [.discarded(count: 1, total: 1)], "\(events)")
            #expect(try DeviceState(bob, peers: [aliceDevice]) == before, "no session, prekey, contact, inbox or outbox change")
            #expect(try bob.history(with: aliceAddress) == historyBefore, "nothing is written into the contact's conversation")
            #expect(try bob.store.conversations() == [direct(aliceAddress)])
            #expect(try bob.store.discardedEnvelopes() == 1)
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine"])
            #expect(try await raw.mailbox(token: try await bob.token()).isEmpty)

            // The real Alice is unaffected.
            try await alice.engine.send(text: "the real alice", to: bobAddress)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["genuine", "the real alice"])
        }
    }

    // MARK: Size limits and malformed bodies

    @Test("oversize envelopes and bodies get 413, malformed JSON 400, each with no state change")
    func oversizeAndMalformed() async throws {
        try await withRelay(["--max-envelope-bytes", "2048"]) { relay, directory in
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let bobAddress = await bob.address
            let bobKey = Base64Bytes(await bob.engine.account.device.publicKey.bytes)
            let raw = RawHTTP(relay)
            let bobToken = try await bob.token()
            let path = raw.messagesPath(bobAddress.description)
            func envelope(_ size: Int) -> Base64Bytes { Base64Bytes(SystemRandom().bytes(size)) }
            func sendBody(_ envelopes: [Base64Bytes]) throws -> [UInt8] {
                [UInt8](try JSONEncoder().encode(SendRequest(messages: envelopes.map { OutgoingMessage(deviceId: 1, deviceKey: bobKey, envelope: $0) })))
            }
            /// Valid JSON padded with whitespace to `size` bytes: only its length is wrong.
            func padded(_ body: [UInt8], to size: Int) -> [UInt8] { Array(body.dropLast()) + Array(repeating: 0x20, count: size - body.count) + [body.last!] }

            // One envelope over --max-envelope-bytes.
            let oversize = try await raw.request(.POST, path, body: try sendBody([envelope(2049)]))
            #expect(oversize.status == 413 && oversize.errorCode == "too_large", "\(oversize.text)")
            // A request body over the relay's limit (16 devices × 2 × 2048 + 64 KiB), though each envelope is small.
            let huge = try await raw.request(.POST, path, body: padded(try sendBody([envelope(100)]), to: 200_000))
            #expect(huge.status == 413, "\(huge.text)")
            // An empty envelope is no message.
            let empty = try await raw.request(.POST, path, body: try sendBody([envelope(0)]))
            #expect(empty.status == 400 && empty.errorCode == "bad_request", "\(empty.text)")
            // A route that takes no body refuses a large one instead of draining it.
            let slotWithBody = try await raw.request(.POST, "/v1/provisioning", body: Array(repeating: 0x41, count: 1 << 20))
            #expect(slotWithBody.status == 413, "\(slotWithBody.text)")
            // Malformed JSON, and well-formed JSON of the wrong shape.
            for body in ["{\"messages\": [", "not json", "{\"messages\": \"none\"}", "{\"messages\": []}",
                         "{\"messages\": [{\"deviceId\": 1, \"deviceKey\": \"%%%\", \"envelope\": \"AAAA\"}]}",
                         "{\"messages\": [{\"deviceId\": -1, \"deviceKey\": \"AAAA\", \"envelope\": \"AAAA\"}]}"] {
                let reply = try await raw.request(.POST, path, body: Array(body.utf8))
                #expect(reply.status == 400 && reply.errorCode == "bad_request", "\(body) → \(reply.status) \(reply.text)")
            }
            #expect(try await raw.mailbox(token: bobToken).isEmpty, "nothing was queued")

            // Account registration: too big, then malformed — no account either time.
            let carolKey = Ed25519.KeyPair()
            let carolList = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: Ed25519.KeyPair().publicKey, createdAt: 1)],
                                                  version: 1, accountKey: carolKey)
            let carol = "carol@\(relay.name)"
            let register = [UInt8](try JSONEncoder().encode(RegisterRequest(address: carol, accountKey: Base64Bytes(carolKey.publicKey.bytes),
                                                                            deviceList: Base64Bytes(carolList.encoded))))
            let bigRegistration = try await raw.request(.POST, "/v1/accounts", body: padded(register, to: 70_000))
            #expect(bigRegistration.status == 413, "\(bigRegistration.text)")
            for body in ["{", "[]", "{\"address\": \"\(carol)\", \"accountKey\": 5, \"deviceList\": \"AAAA\"}",
                         String(decoding: register, as: UTF8.self).replacingOccurrences(of: "\"deviceList\"", with: "\"devices\"")] {
                let reply = try await raw.request(.POST, "/v1/accounts", body: Array(body.utf8))
                #expect(reply.status == 400, "\(body) → \(reply.status) \(reply.text)")
            }
            #expect(try await raw.request(.GET, raw.accountPath(carol)).status == 404, "carol was not created")

            // The same requests without the defect succeed, so the defect alone was refused.
            #expect(try await raw.request(.POST, path, body: try sendBody([envelope(2048)])).status == 204)
            #expect(try await raw.mailbox(token: bobToken).count == 1)
            #expect(try await raw.request(.POST, "/v1/accounts", body: register).status == 201)
            #expect(try await raw.request(.GET, raw.accountPath(carol)).status == 200)
        }
    }

    // MARK: Multi-device sends

    @Test("a multi-device send is all-or-nothing: 409 missing/extra, 410 stale, nothing stored for any device")
    func allOrNothing() async throws {
        try await withRelay { relay, directory in
            let bob1 = try await TestDevice.create("bob", on: relay, in: directory)
            let bob2 = try await bob1.addDevice(2, on: relay, in: directory)
            let bobAddress = await bob1.address
            let key1 = await bob1.engine.account.device.publicKey.bytes, key2 = await bob2.engine.account.device.publicKey.bytes
            let raw = RawHTTP(relay)
            let token1 = try await bob1.token(), token2 = try await bob2.token()

            func post(_ targets: [(UInt32, [UInt8])]) async throws -> (RawHTTP.Reply, [UInt32: [UInt8]]) {
                let envelopes = Dictionary(uniqueKeysWithValues: targets.map { ($0.0, SystemRandom().bytes(200)) })
                let reply = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: targets.map {
                    OutgoingMessage(deviceId: $0.0, deviceKey: Base64Bytes($0.1), envelope: Base64Bytes(envelopes[$0.0]!))
                }))
                return (reply, envelopes)
            }
            func expectNothingQueued(_ comment: Comment) async throws {
                #expect(try await raw.mailbox(token: token1).isEmpty, comment)
                #expect(try await raw.mailbox(token: token2).isEmpty, comment)
            }
            let stranger = Ed25519.KeyPair().publicKey.bytes

            let missing = try await post([(1, key1)]).0
            #expect(missing.status == 409)
            #expect(try missing.decode(DeviceMismatch.self) == DeviceMismatch(missingDevices: [2], extraDevices: [], staleDevices: []))
            try await expectNothingQueued("missing device")

            let extra = try await post([(1, key1), (2, key2), (3, stranger)]).0
            #expect(extra.status == 409)
            #expect(try extra.decode(DeviceMismatch.self) == DeviceMismatch(missingDevices: [], extraDevices: [3], staleDevices: []))
            try await expectNothingQueued("extra device")

            let both = try await post([(1, key1), (3, stranger)]).0
            #expect(both.status == 409)
            #expect(try both.decode(DeviceMismatch.self) == DeviceMismatch(missingDevices: [2], extraDevices: [3], staleDevices: []))
            try await expectNothingQueued("missing and extra")

            let stale = try await post([(1, key1), (2, stranger)]).0
            #expect(stale.status == 410)
            #expect(try stale.decode(DeviceMismatch.self) == DeviceMismatch(missingDevices: [], extraDevices: [], staleDevices: [2]))
            try await expectNothingQueued("stale key")

            let twice = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: SendRequest(messages: [
                OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key1), envelope: Base64Bytes([1])),
                OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key1), envelope: Base64Bytes([2])),
                OutgoingMessage(deviceId: 2, deviceKey: Base64Bytes(key2), envelope: Base64Bytes([3])),
            ]))
            #expect(twice.status == 400)
            #expect(twice.errorCode == "bad_request")
            try await expectNothingQueued("one device named more often than the other")

            // Several messages in one send: each device once per message, all or nothing.
            func batch(_ count: Int, key2 second: [UInt8]) -> (SendRequest, [[UInt8]]) {
                let envelopes = (0..<count).map { _ in SystemRandom().bytes(180) }
                let messages = envelopes.flatMap { envelope in
                    [OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key1), envelope: Base64Bytes(envelope)),
                     OutgoingMessage(deviceId: 2, deviceKey: Base64Bytes(second), envelope: Base64Bytes(envelope.reversed()))]
                }
                return (SendRequest(messages: messages), envelopes)
            }
            let staleBatch = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: batch(3, key2: stranger).0)
            #expect(staleBatch.status == 410)
            try await expectNothingQueued("a batch with one stale key")
            let tooMany = try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: batch(65, key2: key2).0)
            #expect(tooMany.status == 400)
            try await expectNothingQueued("65 messages in one send")

            let (three, sent) = batch(3, key2: key2)
            #expect(try await raw.request(.POST, raw.messagesPath(bobAddress.description), json: three).status == 204)
            #expect(try await raw.mailbox(token: token1).map(\.envelope.bytes) == sent, "queued in request order")
            #expect(try await raw.mailbox(token: token2).map(\.envelope.bytes) == sent.map { Array($0.reversed()) })
            try await raw.acknowledgeAll(token: token1)
            try await raw.acknowledgeAll(token: token2)

            let (complete, envelopes) = try await post([(1, key1), (2, key2)])
            #expect(complete.status == 204)
            #expect(try await raw.mailbox(token: token1).map(\.envelope.bytes) == [envelopes[1]!])
            #expect(try await raw.mailbox(token: token2).map(\.envelope.bytes) == [envelopes[2]!])
        }
    }

    // MARK: Rate limiting

    @Test("with --rate-limit-ip 5 a burst beyond the limit gets 429, and the client reports it as rate limiting")
    func rateLimiting() async throws {
        try await withRelay(["--rate-limit-ip", "5"]) { relay, _ in
            let raw = RawHTTP(relay)
            // The bucket holds 10 (twice the rate) and refills at 5 per second: 100 requests at once cannot fit.
            let replies = try await withThrowingTaskGroup(of: RawHTTP.Reply.self) { group in
                for _ in 0..<100 { group.addTask { try await raw.request(.GET, "/v1/health") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let statuses = replies.map(\.status)
            #expect(statuses.contains(200))
            #expect(statuses.contains(429))
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(Set(statuses))")
            #expect(replies.filter { $0.status == 429 }.allSatisfy { $0.errorCode == "rate_limited" })

            // The client library turns 429 into ClientError.rateLimited (the CLI's exit status 5).
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            var sawRateLimited = false
            for _ in 0..<500 where !sawRateLimited {
                do { _ = try await client.health() } catch ClientError.rateLimited { sawRateLimited = true }
            }
            #expect(sawRateLimited)
        }
    }

    @Test("an account's rate budget is one however its address is spelled, and requests refused as malformed or forged do not spend it")
    func accountBudget() async throws {
        // 1 per second, a burst of 2; a relay named by a host name, whose letters can be written in either case.
        let directory = try TemporaryDirectory()
        let relay = try await RelayProcess.start(in: directory, arguments: ["--rate-limit-account", "1"], publicHost: "localhost")
        defer { relay.kill() }
        let raw = RawHTTP(relay)
        let accountKey = Ed25519.KeyPair(), deviceKey = Ed25519.KeyPair()
        func list(_ version: UInt64) -> SignedDeviceList {
            SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: deviceKey.publicKey, createdAt: 1)], version: version, accountKey: accountKey)
        }
        let address = "bob@\(relay.name)"
        let registered = try await raw.request(.POST, "/v1/accounts", json: RegisterRequest(
            address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes), deviceList: Base64Bytes(list(1).encoded)))
        #expect(registered.status == 201, "\(registered.text)")

        // A stranger's refused device-list updates (garbage, a forged signature) leave the owner's budget whole.
        let devicesPath = raw.accountPath(address) + "/devices"
        let forged = SignedDeviceList.sign(devices: list(1).devices, version: 5, accountKey: Ed25519.KeyPair())
        for _ in 0..<10 {
            #expect(try await raw.request(.PUT, devicesPath, body: Array("garbage".utf8)).status == 400)
            #expect(try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(forged.encoded))).status == 403)
        }
        #expect(try await raw.request(.PUT, devicesPath, json: DeviceListUpdate(deviceList: Base64Bytes(list(2).encoded))).status == 204,
                "the owner's signed update goes through")

        // Malformed sends do not spend the recipient's budget either.
        let send = SendRequest(messages: [OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(deviceKey.publicKey.bytes), envelope: Base64Bytes([1, 2, 3]))])
        for _ in 0..<10 { #expect(try await raw.request(.POST, raw.messagesPath(address), body: Array("{".utf8)).status == 400) }
        #expect(try await raw.request(.POST, raw.messagesPath(address), json: send).status == 204)

        // Twelve spellings of one address share its budget: at most the burst plus what refilled meanwhile.
        let host = relay.publicHost
        let spellings = (0..<12).map { round in
            String(host.enumerated().map { index, letter in (round >> (index % 4)) & 1 == 1 ? Character(letter.uppercased()) : letter })
        }
        let started = ContinuousClock.now
        var accepted = 0
        for spelling in spellings {
            let status = try await raw.request(.POST, raw.messagesPath("bob@\(spelling):\(relay.port)"), json: send).status
            #expect(status == 204 || status == 429)
            if status == 204 { accepted += 1 }
        }
        let seconds = Double(started.duration(to: .now).components.seconds) + 1
        #expect(Double(accepted) <= 2 + seconds, "\(accepted) of 12 sends accepted in about \(seconds) s")
    }
}

