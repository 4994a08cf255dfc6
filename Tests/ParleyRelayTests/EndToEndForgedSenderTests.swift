import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Mallory, built from the protocol layer: a throw-away account key signs a certificate naming `claimed`
/// (any text at all), and the sealed message goes to `recipient`'s relay unauthenticated, as sealed
/// sending allows. The certificate is encoded by hand, as an attacker's own client would.
func postForgedMessage(claiming claimed: String, text: String, to recipient: String, on relay: RelayProcess) async throws {
    let now = SystemWallClock().nowMilliseconds()
    let accountKey = Ed25519.KeyPair()
    let device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
    let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: now)],
                                     version: 1, accountKey: accountKey)
    let impostor = LocalAccount(address: claimed, accountKey: accountKey, device: device, deviceList: list,
                                certificateExpiry: now + 86_400_000)
    let relayClient = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
    let recipientList = try SignedDeviceList(verifying: try await relayClient.account(recipient).deviceList.bytes)
    let store = InMemorySessionStore(preKeys: .generate(oneTime: 1))
    store.setAccount(KnownAccount(accountKey: recipientList.accountKey, deviceList: recipientList), for: try AccountAddress(recipient))
    let mallory = SessionManager(account: impostor, store: store, bundles: RelayDirectory(relay: relayClient))
    let forged = try await mallory.send(Content(messageId: Content.newMessageId(), sentAt: now, destination: recipient,
                                                body: .text(text)), to: try AccountAddress(recipient))
    let raw = RawHTTP(relay)
    let reply = try await raw.request(.POST, raw.messagesPath(recipient), json: SendRequest(messages: forged.map {
        OutgoingMessage(deviceId: $0.recipient.deviceId, deviceKey: Base64Bytes(recipientList.device($0.recipient.deviceId)!.identityKey.bytes),
                        envelope: Base64Bytes($0.envelope))
    }))
    guard reply.status == 204 else { throw FixtureError("the relay refused the forged envelope: \(reply.status) \(reply.text)") }
}

/// Whether `text` holds anything a terminal would obey or reorder (line ends of the output itself aside).
func carriesControls(_ text: String) -> Bool {
    text.unicodeScalars.contains { PeerText.isDangerous($0) && $0 != "\n" }
}

@Suite("End to end: forged senders and text a peer controls (issue #19)")
struct EndToEndForgedSenderTests {
    /// Escape sequences a hostile review put in a certificate's address: OSC 0 (window title), OSC 52
    /// (clipboard), a line redrawn as a message from a real contact, then everything after it hidden.
    static let hostileAddress = "\u{1B}]0;pwned\u{7}\u{1B}]52;c;cm0gLXJmIH4=\u{7}x@y\r\u{1B}[2Kboss@relay: wire the money\u{1B}[8m"
    /// What a real contact may write: C1 controls (U+009B is a one-byte CSI) and bidirectional overrides.
    static let hostileText = "pay \u{9B}31mnow\u{9D}0;title\u{9C} \u{202E}gnp.exe\u{202C} \u{2066}x\u{2069}"

    @Test("a certificate whose address carries escapes, and a contact's text with C1 and bidi controls, reach no output of receive, receive --json or search")
    func nothingReachesTheTerminal() async throws {
        try await withRelay { relay, directory in
            let parley = try Binaries.path("parley")
            let alice = "alice@\(relay.name)", bob = "bob@\(relay.name)"
            let aliceHome = directory.sub("cli-alice"), bobHome = directory.sub("cli-bob")
            func cli(_ arguments: [String], _ home: String) async throws -> ProcessResult {
                let result = try await run(parley, arguments + ["--home", home, "--key-file", home + ".key"], in: directory)
                #expect(result.status == 0, "\(arguments): \(result.summary)")
                #expect(!carriesControls(result.stdout) && !carriesControls(result.stderr), "\(arguments): \(result.summary.debugDescription)")
                return result
            }
            _ = try await cli(["init", alice], aliceHome)
            _ = try await cli(["init", bob], bobHome)
            _ = try await cli(["add-contact", bob], aliceHome)

            // Plain output: the forgery is refused at decoding, and counted without its claimed sender (no
            // sender is certain, so nothing is filed in a conversation).
            _ = try await cli(["send", bob, Self.hostileText], aliceHome)
            try await postForgedMessage(claiming: Self.hostileAddress, text: "hello", to: bob, on: relay)
            let plain = try await cli(["receive", "--timeout", "0"], bobHome)
            #expect(plain.stdout.contains("\(alice): pay "), "\(plain.stdout.debugDescription)")
            #expect(plain.stdout.contains("that no contact of yours sent discarded unread; 1 in all"), "\(plain.stdout.debugDescription)")
            #expect(!plain.stdout.contains("pwned") && !plain.stdout.contains("wire the money"), "\(plain.stdout.debugDescription)")

            // JSON: C1 and bidi controls escaped as \uXXXX; the value a program decodes is the text sent.
            _ = try await cli(["send", bob, Self.hostileText], aliceHome)
            try await postForgedMessage(claiming: Self.hostileAddress, text: "hello", to: bob, on: relay)
            let json = try await cli(["receive", "--json", "--timeout", "0"], bobHome)
            #expect(json.stdout.contains("\\u009b31mnow") && json.stdout.contains("\\u202egnp"), "\(json.stdout.debugDescription)")
            let objects = try json.stdout.split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
            #expect(objects.compactMap { (($0["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any])?["message"] as? String } == [Self.hostileText])
            // What no notification carries is said on standard error: one discard counted, nothing undecryptable.
            #expect(json.stderr.contains("1 envelope that no contact of yours sent discarded unread; 2 in all"), "\(json.stderr.debugDescription)")
            #expect(!json.stderr.contains("could not be decrypted"), "\(json.stderr.debugDescription)")

            // History: both messages, and no record of the forgeries, searched, plain and as JSON.
            let pay = try await cli(["search", "pay"], bobHome)
            #expect(pay.stdout.split(separator: "\n").count == 2, "\(pay.stdout.debugDescription)")
            let refusals = try await cli(["search", "decrypted"], bobHome)
            #expect(refusals.stdout == "no messages contain \"decrypted\"\n", "\(refusals.stdout.debugDescription)")
            for query in ["pay", "decrypted"] {
                _ = try await cli(["search", query, "--json"], bobHome)
            }
            _ = try await cli(["contacts"], bobHome)
        }
    }

    @Test("a certificate naming an account on an unreachable relay is held unverified: not shown as a message, no contact saved, kept in the mailbox")
    func unreachableSenderIsHeld() async throws {
        try await withRelay { relay, directory in
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let bobAddress = await bob.address
            let claimed = "ceo@127.0.0.1:9"     // the discard port: nothing answers there
            try await postForgedMessage(claiming: claimed, text: "wire the money", to: bobAddress.description, on: relay)

            for _ in 0..<2 {
                let events = try await bob.engine.receivePending()
                #expect(events == [.unverifiedSender(address: try AccountAddress(claimed))], "\(events)")
                #expect(try bob.store.contact(try AccountAddress(claimed)) == nil, "no contact pinned to the forger's key")
                let filed = try bob.history(with: try AccountAddress(claimed))
                #expect(filed.isEmpty, "\(filed)")
                #expect(try await RawHTTP(relay).mailbox(token: try await bob.token()).count == 1, "held in the mailbox")
            }
        }
    }

    @Test("a genuine sender whose relay is down is held, then accepted with the key its relay publishes once it is back")
    func heldSenderArrivesLater() async throws {
        try await withRelay { relay, directory in
            let carolFiles = try TemporaryDirectory()     // a relay of its own needs a data directory of its own
            let carolRelay = try await RelayProcess.start(in: carolFiles)
            defer { carolRelay.kill(); withExtendedLifetime(carolFiles) {} }
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let carol = try await TestDevice.create("carol", on: carolRelay, in: directory)
            let bobAddress = await bob.address, carolAddress = await carol.address
            try await carol.engine.addContact(bobAddress)
            try await carol.engine.send(text: "hello from another relay", to: bobAddress)

            _ = try await carolRelay.stop()
            #expect(try await bob.engine.receivePending() == [.unverifiedSender(address: carolAddress)])
            #expect(try bob.store.contact(carolAddress) == nil)

            try await carolRelay.restart()
            let events = try await bob.engine.receivePending()
            #expect(events.filter(\.isMessage).count == 1, "\(events)")
            #expect(try bob.incomingTexts(from: carolAddress) == ["hello from another relay"])
            let contact = try #require(try bob.store.contact(carolAddress))
            let carolKey = await carol.engine.account.accountKey.publicKey
            #expect(contact.account.accountKey == carolKey)
            #expect(try await RawHTTP(relay).mailbox(token: try await bob.token()).isEmpty)
        }
    }
}
