import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Contact verification against real relay processes: safety numbers and scannable codes, a contact's
/// account key changing mid-conversation (sending stops until the user decides), forged device lists
/// served by a hostile relay, device-list changes written into the conversation, and the CLI commands.
@Suite("Verification: safety numbers, key changes, forged device lists")
struct VerificationTests {
    // MARK: Helpers

    /// Alice adds Bob and writes; Bob reads and answers; Alice reads the answer.
    private func converse(_ alice: TestDevice, _ bob: TestDevice) async throws {
        let a = await alice.address, b = await bob.address
        try await alice.engine.addContact(b)
        try await alice.engine.send(text: "hello bob", to: b)
        try await bob.engine.receivePending()
        #expect(try bob.incomingTexts(from: a) == ["hello bob"])
        try await bob.engine.send(text: "hello alice", to: a)
        try await alice.engine.receivePending()
        #expect(try alice.incomingTexts(from: b) == ["hello alice"])
    }

    private func trust(of peer: AccountAddress, at device: TestDevice) throws -> TrustState? { try device.store.contact(peer)?.trust }

    private func accountKey(of device: TestDevice) throws -> Ed25519.PublicKey { try #require(try device.store.localAccount()).accountKey.publicKey }

    /// `digits` with the digit at `index` replaced by another one: a well-formed but wrong safety number.
    private func wrongDigits(_ digits: String, at index: Int = 17) -> String {
        var characters = Array(digits)
        characters[index] = characters[index] == "0" ? "1" : "0"
        return String(characters)
    }

    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// Alice on an ordinary relay; Bob on a relay behind a proxy that can forge replies or be swapped for
    /// a fresh relay of the same name.
    private func withSplitRelays(_ body: (_ relayA: RelayProcess, _ bobsRelay: ProxiedRelay, _ directory: TemporaryDirectory) async throws -> Void)
        async throws {
        try await withRelay { relayA, directory in
            let bobsRelay = try await ProxiedRelay.start(in: directory)
            defer { bobsRelay.stop() }
            try await body(relayA, bobsRelay, directory)
        }
    }

    // MARK: Safety numbers and codes

    @Test("both sides compute the same 60 digits; a wrong or malformed code changes nothing; codes scan both ways; version 1 is a version mismatch")
    func safetyNumbersAndCodes() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)

            let atAlice = try await alice.engine.safetyNumber(with: b)
            let atBob = try await bob.engine.safetyNumber(with: a)
            #expect(atAlice.digits.count == 60 && atAlice.digits.allSatisfy { $0.isASCII && $0.isNumber })
            #expect(atAlice.digits == atBob.digits, "both sides see the same number")
            // PROTOCOL.md §14 from the raw inputs: key = 0x06 ‖ AIK, id = the address.
            let aliceKey = try accountKey(of: alice), bobKey = try accountKey(of: bob)
            #expect(SafetyNumber.displayable(localKey: [0x06] + aliceKey.bytes, localId: Array(a.description.utf8),
                                             remoteKey: [0x06] + bobKey.bytes, remoteId: Array(b.description.utf8)) == atAlice.digits)
            // The scannable form: version 80, then the scanner's own hash first.
            #expect(Array(atAlice.scannable.prefix(2)) == [0x08, 80] && atAlice.scannable.count == 2 + 2 * 36)
            #expect(Array(atAlice.scannable[2..<6]) == [0x12, 0x22, 0x0A, 0x20] && Array(atAlice.scannable[38..<42]) == [0x1A, 0x22, 0x0A, 0x20])
            #expect(Array(atAlice.scannable[6..<38]) == Array(atBob.scannable[42..<74]), "Alice's local half is Bob's remote half")
            #expect(Array(atAlice.scannable[42..<74]) == Array(atBob.scannable[6..<38]))

            // A wrong number (one digit off, or the halves swapped) is a mismatch and changes nothing.
            let halvesSwapped = String(atBob.digits.suffix(30) + atBob.digits.prefix(30))
            for wrong in [wrongDigits(atBob.digits), wrongDigits(atBob.digits, at: 59), halvesSwapped] {
                #expect(try await alice.engine.verify(b, digits: wrong) == .mismatch)
            }
            // Not 60 ASCII digits: malformed, whatever it contains.
            let fullwidth = String(repeating: "\u{FF11}", count: 60)  // FULLWIDTH DIGIT ONE: a number, not ASCII
            for malformed in ["", "12345", String(atBob.digits.dropLast()), atBob.digits + "1", "a" + atBob.digits.dropFirst(),
                              fullwidth, String(atBob.digits.prefix(59)) + "O"] {
                #expect(try await alice.engine.verify(b, digits: malformed) == .malformed, "\(malformed)")
            }
            // Scanned codes that are not Bob's: Alice's own code, one bit off, cut short, with a trailing byte.
            var flipped = atBob.scannable
            flipped[50] ^= 0x01
            #expect(try await alice.engine.verify(b, scanned: atAlice.scannable) == .mismatch)
            #expect(try await alice.engine.verify(b, scanned: flipped) == .mismatch)
            #expect(try await alice.engine.verify(b, scanned: Array(atBob.scannable.dropLast())) == .malformed)
            #expect(try await alice.engine.verify(b, scanned: atBob.scannable + [0]) == .malformed)
            #expect(try await alice.engine.verify(b, scanned: []) == .malformed)
            // Bob's code as libsignal's versions 1 and 2 would label it: reported as a version mismatch, not as different numbers.
            for version in [1, 2] {
                var other = atBob.scannable
                other[1] = UInt8(version)
                #expect(try await alice.engine.verify(b, scanned: other) == .versionMismatch(theirs: version, ours: 80))
            }
            #expect(try trust(of: b, at: alice) == .unverified, "no failed comparison changed the trust state")
            #expect(try alice.notices(with: b).isEmpty)
            let carol = try AccountAddress("carol@\(relay.name)")
            await #expect(throws: ClientError.unknownContact(carol)) {
                try await alice.engine.verify(carol, digits: atBob.digits)
            }

            // The right digits, as read aloud in groups: verified, and the conversation says so.
            #expect(try await alice.engine.verify(b, digits: SafetyNumber.grouped(atBob.digits)) == .verified)
            #expect(try trust(of: b, at: alice) == .verified)
            #expect(try alice.notices(with: b) == ["You verified the safety number of \(b)."])
            #expect(try await alice.engine.verify(b, digits: atBob.digits) == .verified)
            #expect(try alice.notices(with: b).count == 1, "verifying again adds no second notice")
            // A wrong code afterwards does not undo the verification.
            #expect(try await alice.engine.verify(b, digits: wrongDigits(atBob.digits)) == .mismatch)
            #expect(try trust(of: b, at: alice) == .verified)

            // The other way round, by scanning: Bob scans Alice's code.
            var aliceV1 = atAlice.scannable
            aliceV1[1] = 1
            #expect(try await bob.engine.verify(a, scanned: aliceV1) == .versionMismatch(theirs: 1, ours: 80))
            #expect(try trust(of: a, at: bob) == .unverified)
            #expect(try await bob.engine.verify(a, scanned: atAlice.scannable) == .verified)
            #expect(try trust(of: a, at: bob) == .verified)

            // Verification changes nothing about the conversation itself.
            try await alice.engine.send(text: "verified both ways", to: b)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: a).last == "verified both ways")
        }
    }

    // MARK: Device-list changes

    @Test("verify's words: a mismatch for a verified contact says it stays verified; '123' is not a safety number, not a mismatch")
    func verificationWording() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let b = await bob.address
            try await converse(alice, bob)
            let operations = Operations(engine: alice.engine)
            let digits = try await alice.engine.safetyNumber(with: b).digits

            let unverified = try await operations.verify(b, .digits(wrongDigits(digits)))
            #expect(unverified.result == .mismatch && !unverified.stillVerified)
            #expect(unverified.sentence == "The safety numbers do NOT match: \(b) is not verified.")

            #expect(try await operations.verify(b, .digits(digits)).sentence == "\(b) is verified.")
            let verified = try await operations.verify(b, .digits(wrongDigits(digits)))
            #expect(verified.result == .mismatch && verified.stillVerified)
            #expect(verified.sentence.contains("\(b) stays verified"))
            #expect(!verified.sentence.contains("unverified") && !verified.sentence.contains("not verified"))
            #expect(try trust(of: b, at: alice) == .verified, "a mismatch changes nothing")

            for junk in ["123", "12345 67890", String(repeating: "1", count: 61), String(repeating: "x", count: 60)] {
                await #expect(throws: OperationError.notASafetyNumber) { try await operations.verify(b, .digits(junk)) }
            }
            #expect(OperationError.notASafetyNumber.description.hasPrefix("that is not a safety number"))
            #expect(!OperationError.notASafetyNumber.description.contains("match"))
            #expect(try trust(of: b, at: alice) == .verified)
        }
    }

    @Test("device-list changes are written into the conversation, a burst is flagged, and the safety number stays the same")
    func deviceListChangesAreAnnounced() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)
            let before = try await alice.engine.safetyNumber(with: b)
            #expect(try await alice.engine.verify(b, digits: before.digits) == .verified)
            let events = await EngineEventLog.recording(alice.engine)
            let noticesBefore = try alice.notices(with: b).count

            // Bob links a second device. Alice learns it when the relay refuses her envelope set (409),
            // and her message reaches both devices.
            let bob2 = try await bob.linkDevice(2, in: directory)
            try await alice.engine.send(text: "to both of your devices", to: b)
            var notices = try alice.notices(with: b)
            #expect(notices.count == noticesBefore + 1)
            #expect(notices.last == "\(b) added device #2.")
            try await events.waitFor("devices of bob changed (+2)") { $0 == .devicesChanged(address: b, added: [2], removed: [], suspicious: false) }
            try await bob.engine.receivePending()
            try await bob2.engine.receivePending()
            #expect(try bob.incomingTexts(from: a).last == "to both of your devices")
            #expect(try bob2.incomingTexts(from: a) == ["to both of your devices"])
            #expect(try alice.store.contact(b)?.account.deviceList?.version == 2)

            // The number depends on the account key only: unchanged at Alice, and Bob's new device shows the same.
            #expect(try await alice.engine.safetyNumber(with: b) == before)
            #expect(try trust(of: b, at: alice) == .verified, "a new device does not undo the verification")
            #expect(try await bob2.engine.safetyNumber(with: a).digits == before.digits)

            // Bob removes the device again.
            let device1 = try #require(try bob.store.localAccount()).deviceList.devices
            try await bob.publishDevices(device1)
            try await alice.engine.send(text: "only device one now", to: b)
            notices = try alice.notices(with: b)
            #expect(notices.last == "\(b) removed device #2.")
            #expect(try alice.store.sessions(for: DeviceAddress(address: b.description, deviceId: 2)).isEmpty, "the removed device's session is gone")
            #expect(try await alice.engine.safetyNumber(with: b) == before)

            // Two new devices at once: announced, not flagged.
            func newDevice(_ id: UInt32) -> DeviceEntry {
                DeviceEntry(deviceId: id, identityKey: Ed25519.KeyPair().publicKey, createdAt: SystemWallClock().nowMilliseconds())
            }
            try await bob.publishDevices(device1 + [newDevice(3), newDevice(4)])
            try await alice.engine.addContact(b)
            notices = try alice.notices(with: b)
            #expect(notices.last == "\(b) added devices #3, #4.")

            // Three more at once (and one removed): flagged as unusual.
            try await bob.publishDevices(device1 + [newDevice(5), newDevice(6), newDevice(7)])
            try await alice.engine.addContact(b)
            notices = try alice.notices(with: b)
            let burst = try #require(notices.last)
            #expect(burst.hasPrefix("\(b) added devices #5, #6, #7 and removed devices #3, #4."), "\(burst)")
            #expect(burst.contains("unusual number of new devices"), "\(burst)")
            try await events.waitFor("devices of bob changed, flagged") {
                $0 == .devicesChanged(address: b, added: [5, 6, 7], removed: [3, 4], suspicious: true)
            }
            #expect(try await alice.engine.safetyNumber(with: b) == before)
            #expect(try trust(of: b, at: alice) == .verified)
            #expect(!events.events.contains { if case .identityChanged = $0 { true } else { false } }, "no device change is an identity change")
        }
    }

    // MARK: Key changes

    @Test("a verified contact's key changes mid-conversation: nothing is encrypted to the new key until the user verifies it")
    func keyChangeOfVerifiedContactStopsSending() async throws {
        try await withSplitRelays { relayA, bobsRelay, directory in
            let alice = try await TestDevice.create("alice", on: relayA, in: directory)
            let bob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob", in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)
            let oldNumber = try await alice.engine.safetyNumber(with: b)
            #expect(try await alice.engine.verify(b, digits: try await bob.engine.safetyNumber(with: a).digits) == .verified)
            let oldKey = try accountKey(of: bob)

            // Bob's relay is replaced and bob@… is registered again, with another account key.
            try await bobsRelay.replaceUpstream()
            let newBob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob-new", in: directory)
            let newKey = try accountKey(of: newBob)
            #expect(newKey != oldKey)

            // Alice writes before she knows: the relay refuses the envelope made for the old device key (410),
            // Alice fetches the list, finds the new account key, and stops instead of encrypting to it.
            do {
                try await alice.engine.send(text: "meant for the bob I verified", to: b)
                Issue.record("sending to a verified contact whose key changed must fail")
            } catch let error as ClientError {
                #expect(error == .identityChanged(b))
                #expect(error.exitCode == 4)
            }
            let contact = try #require(try alice.store.contact(b))
            #expect(contact.trust == .changed)
            #expect(contact.account.accountKey == newKey)
            #expect(try alice.store.sessions(for: DeviceAddress(address: b.description, deviceId: 1)).isEmpty, "every session with the old key is deleted")
            #expect(try alice.store.outboxEntries().isEmpty)
            let unsent = try #require(try alice.sent(to: b).last)
            #expect(unsent.text == "meant for the bob I verified" && unsent.state == .failed)
            let notice = try #require(try alice.notices(with: b).last)
            #expect(notice.hasPrefix("The identity key of \(b) changed."), "\(notice)")
            #expect(notice.contains("Sending is stopped"), "\(notice)")
            #expect(try await newBob.engine.receivePending().isEmpty, "the new key received nothing")

            // Later sends are refused before anything is encrypted or queued.
            let historyCount = try alice.history(with: b).count
            await #expect(throws: ClientError.identityChanged(b)) { try await alice.engine.send(text: "second try", to: b) }
            #expect(try alice.store.outboxEntries().isEmpty)
            #expect(try alice.history(with: b).count == historyCount)

            // The command line says the same: exit status 4, and `identities` shows the state.
            let parley = try Binaries.path("parley")
            let cli = ["--home", alice.home, "--key-file", alice.home + "/key"]
            var result = try await run(parley, ["send", b.description, "from the command line"] + cli, in: directory)
            #expect(result.status == 4, "\(result.summary)")
            #expect(result.stderr.contains("has changed"), "\(result.summary)")
            result = try await run(parley, ["identities", "--json"] + cli, in: directory)
            #expect(result.stdout.contains("\"trustLevel\":\"CHANGED\""), "\(result.summary)")
            #expect(try alice.store.outboxEntries().isEmpty)

            // The number changed; the old digits no longer verify.
            let newNumber = try await alice.engine.safetyNumber(with: b)
            #expect(newNumber.digits != oldNumber.digits)
            #expect(try await alice.engine.verify(b, digits: oldNumber.digits) == .mismatch)
            #expect(try trust(of: b, at: alice) == .changed)

            // The user compares the new number with Bob and verifies it: sending resumes, to the new key.
            try await newBob.engine.addContact(a)
            let atNewBob = try await newBob.engine.safetyNumber(with: a)
            #expect(atNewBob.digits == newNumber.digits)
            #expect(try await alice.engine.verify(b, digits: atNewBob.digits) == .verified)
            #expect(try alice.notices(with: b).last == "You verified the safety number of \(b).")
            try await alice.engine.send(text: "verified again", to: b)
            try await newBob.engine.receivePending()
            #expect(try newBob.incomingTexts(from: a) == ["verified again"])
            try await newBob.engine.send(text: "the new me", to: a)
            try await alice.engine.receivePending()
            #expect(try alice.incomingTexts(from: b).last == "the new me")
            #expect(try trust(of: b, at: alice) == .verified)
        }
    }

    @Test("a message signed with a new account key is shown, stops sending (receipts too), and a second change keeps it stopped until `trust`")
    func keyChangeFromIncomingMessage() async throws {
        try await withSplitRelays { relayA, bobsRelay, directory in
            let alice = try await TestDevice.create("alice", on: relayA, in: directory)
            let bob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob", in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)
            #expect(try await alice.engine.verify(b, digits: try await alice.engine.safetyNumber(with: b).digits) == .verified)
            let events = await EngineEventLog.recording(alice.engine)

            try await bobsRelay.replaceUpstream()
            let newBob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob-new", in: directory)
            try await newBob.engine.addContact(a)
            try await newBob.engine.send(text: "hello from my new key", to: a)

            // The sender certificate carries another account key: Alice checks it against the relay's signed
            // list, the policy marks the verified contact changed, and the message is shown.
            try await alice.engine.receivePending()
            #expect(try alice.incomingTexts(from: b).last == "hello from my new key")
            #expect(try alice.failures(in: b).isEmpty)
            let contact = try #require(try alice.store.contact(b))
            #expect(contact.trust == .changed)
            #expect(contact.account.accountKey == (try accountKey(of: newBob)))
            #expect(try alice.notices(with: b).last?.hasPrefix("The identity key of \(b) changed.") == true)
            try await events.waitFor("identity of bob changed") { $0 == .identityChanged(address: b, trust: .changed) }
            // No delivery receipt went to the new key, and nothing else can be sent.
            #expect(try await newBob.engine.receivePending().isEmpty)
            await #expect(throws: ClientError.identityChanged(b)) { try await alice.engine.send(text: "hi?", to: b) }

            // The key changes again before the user decided: still stopped (not silently accepted).
            try await bobsRelay.replaceUpstream()
            let thirdBob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob-third", in: directory)
            try await alice.engine.addContact(b)
            #expect(try alice.store.contact(b)?.account.accountKey == (try accountKey(of: thirdBob)))
            #expect(try trust(of: b, at: alice) == .changed, "a second change of a once-verified key must not unblock sending")
            await #expect(throws: ClientError.identityChanged(b)) { try await alice.engine.send(text: "hi??", to: b) }
            #expect(try alice.store.outboxEntries().isEmpty)

            // The user accepts the current key without verifying it (`parley trust`): sending resumes, unverified.
            try await alice.engine.trust(b)
            #expect(try trust(of: b, at: alice) == .unverified)
            #expect(try alice.notices(with: b).last == "You accepted the identity key of \(b).")
            try await alice.engine.send(text: "accepted", to: b)
            try await thirdBob.engine.receivePending()
            #expect(try thirdBob.incomingTexts(from: a) == ["accepted"])
        }
    }

    @Test("trust policies: on-first-use accepts a change of an unverified contact, always accepts every change, never refuses every key until trusted")
    func trustPolicies() async throws {
        try await withSplitRelays { relayA, bobsRelay, directory in
            let alice = try await TestDevice.create("alice", on: relayA, in: directory)  // on-first-use, does not verify
            let dave = try await TestDevice.create("dave", relayName: relayA.name, homeLabel: "dave", in: directory, trustPolicy: .always)
            let erin = try await TestDevice.create("erin", relayName: relayA.name, homeLabel: "erin", in: directory, trustPolicy: .never)
            let bob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob", in: directory)
            let b = await bob.address
            let a = await alice.address, d = await dave.address, e = await erin.address

            try await converse(alice, bob)
            try await dave.engine.addContact(b)
            #expect(try await dave.engine.verify(b, digits: try await dave.engine.safetyNumber(with: b).digits) == .verified)
            try await dave.engine.send(text: "from dave", to: b)

            // never: even the first key is not trusted; nothing is queued until the user accepts it.
            #expect(try await erin.engine.addContact(b).trust == .untrusted)
            do {
                try await erin.engine.send(text: "refused", to: b)
                Issue.record("sending to an untrusted contact must fail")
            } catch let error as ClientError {
                #expect(error == .identityChanged(b) && error.exitCode == 4)
            }
            #expect(try erin.store.outboxEntries().isEmpty && erin.sent(to: b).isEmpty)
            try await erin.engine.trust(b)
            #expect(try trust(of: b, at: erin) == .unverified)
            #expect(try erin.notices(with: b) == ["You accepted the identity key of \(b)."])
            try await erin.engine.send(text: "from erin", to: b)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: d) == ["from dave"] && bob.incomingTexts(from: e) == ["from erin"])

            // Bob's account key changes.
            try await bobsRelay.replaceUpstream()
            let newBob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob-new", in: directory)
            let newKey = try accountKey(of: newBob)

            // on-first-use, unverified: accepted and announced; sending goes on, to the new key.
            let aliceContact = try await alice.engine.addContact(b)
            #expect(aliceContact.trust == .unverified && aliceContact.account.accountKey == newKey)
            #expect(try alice.store.sessions(for: DeviceAddress(address: b.description, deviceId: 1)).isEmpty)
            let aliceNotice = try #require(try alice.notices(with: b).last)
            #expect(aliceNotice.hasPrefix("The identity key of \(b) changed.") && aliceNotice.contains("parley verify \(b)"), "\(aliceNotice)")
            try await alice.engine.send(text: "alice to the new key", to: b)

            // always, even verified: accepted (no longer verified) and announced.
            let daveContact = try await dave.engine.addContact(b)
            #expect(daveContact.trust == .unverified && daveContact.account.accountKey == newKey)
            #expect(try dave.notices(with: b).last?.hasPrefix("The identity key of \(b) changed.") == true)
            try await dave.engine.send(text: "dave to the new key", to: b)

            // never: the new key is not trusted either, until the user accepts it again.
            let erinContact = try await erin.engine.addContact(b)
            #expect(erinContact.trust == .untrusted && erinContact.account.accountKey == newKey)
            await #expect(throws: ClientError.identityChanged(b)) { try await erin.engine.send(text: "refused again", to: b) }
            try await erin.engine.trust(b)
            try await erin.engine.send(text: "erin to the new key", to: b)

            try await newBob.engine.receivePending()
            #expect(try newBob.incomingTexts(from: a) == ["alice to the new key"])
            #expect(try newBob.incomingTexts(from: d) == ["dave to the new key"])
            #expect(try newBob.incomingTexts(from: e) == ["erin to the new key"])

            // never, for a stranger who writes first: the message is shown, the sender is untrusted, no reply goes out.
            let frank = try await TestDevice.create("frank", relayName: relayA.name, homeLabel: "frank", in: directory, trustPolicy: .never)
            let f = await frank.address
            try await newBob.engine.addContact(f)
            try await newBob.engine.send(text: "hello frank", to: f)
            try await frank.engine.receivePending()
            #expect(try frank.incomingTexts(from: b) == ["hello frank"])
            #expect(try trust(of: b, at: frank) == .untrusted)
            await #expect(throws: ClientError.identityChanged(b)) { try await frank.engine.send(text: "who are you", to: b) }
        }
    }

    @Test("a stranger's first message signed with another account key than the relay's is not taken as that address's key")
    func firstMessageWithForeignKeyIsRefused() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice.address, b = await bob.address

            // Mallory needs no account: a local store claiming bob's address with her own account key is
            // enough to issue sender certificates for bob@… and write to Alice, who has never talked to Bob.
            let now = SystemWallClock().nowMilliseconds()
            let forgedKey = Ed25519.KeyPair(), forgedDevice = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
            let forgedList = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: forgedDevice.publicKey, createdAt: now)],
                                                   version: 1, accountKey: forgedKey)
            let malloryStore = try TestDevice.newStore(home: directory.sub("home-mallory"))
            try malloryStore.saveLocalAccount(LocalAccount(address: b.description, accountKey: forgedKey, device: forgedDevice, deviceList: forgedList,
                                                           certificateExpiry: now + LocalAccount.certificateLifetime),
                                              preKeys: LocalPreKeys.generate(oneTime: 1))
            let mallory = try Engine(store: malloryStore, relay: try RelayClient(endpoint: try TestDevice.endpoint(for: relay)))
            try await mallory.addContact(a)
            // Her client cannot sign in as bob, so it keeps the envelope; she posts it herself, as a stranger.
            _ = try? await mallory.send(text: "this is bob, trust me", to: a)
            let aliceDevice = await alice.engine.account.device
            let raw = RawHTTP(relay)
            let posted = try await raw.request(.POST, raw.messagesPath(a.description), json: SendRequest(messages: try malloryStore.outboxEntries().map {
                OutgoingMessage(deviceId: $0.envelope.recipient.deviceId, deviceKey: Base64Bytes(aliceDevice.publicKey.bytes),
                                envelope: Base64Bytes($0.envelope.envelope))
            }))
            #expect(posted.status == 204, "\(posted.text)")

            try await alice.engine.receivePending()
            #expect(try alice.incomingTexts(from: b).isEmpty, "a certificate the relay's directory contradicts is not shown as bob's")
            #expect(try alice.failures(in: b).isEmpty, "nor written into bob's conversation")
            #expect(try alice.store.discardedEnvelopes() == 1, "it is counted instead of being dropped")
            let contact = try alice.store.contact(b), bobKey = try accountKey(of: bob)
            #expect(contact == nil || contact?.account.accountKey == bobKey, "bob's key is the relay's, not mallory's")

            // The real Bob writes: an ordinary first message, no identity change.
            try await bob.engine.addContact(a)
            try await bob.engine.send(text: "the real bob", to: a)
            try await alice.engine.receivePending()
            #expect(try alice.incomingTexts(from: b) == ["the real bob"])
            #expect(try trust(of: b, at: alice) == .unverified)
            #expect(try alice.notices(with: b).isEmpty, "no identity change to announce")
        }
    }

    // MARK: Forged device lists

    @Test("a forged device list from the relay is refused and changes nothing; a rolled-back list is ignored")
    func forgedDeviceListsAreRefused() async throws {
        try await withSplitRelays { relayA, bobsRelay, directory in
            let alice = try await TestDevice.create("alice", on: relayA, in: directory)
            let bob = try await TestDevice.create("bob", relayName: bobsRelay.name, homeLabel: "bob", in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)
            #expect(try await alice.engine.verify(b, digits: try await alice.engine.safetyNumber(with: b).digits) == .verified)
            let original = try #require(try alice.store.contact(b))
            let genuine = try await bob.engine.relay.account(b.description)
            let genuineList = try SignedDeviceList(verifying: genuine.deviceList.bytes)
            let bobKey = try accountKey(of: bob)
            let number = try await alice.engine.safetyNumber(with: b)

            /// Bob's relay answers GET /v1/accounts/<bob> with `forged` instead.
            func serve(_ forged: AccountResponse?) {
                guard let forged else { return bobsRelay.proxy.setTamper(nil) }
                let body = [UInt8](try! JSONEncoder().encode(forged))
                bobsRelay.proxy.setTamper { request, reply in
                    request.method == "GET" && request.path == "/v1/accounts/\(b)" && reply.status == 200
                        ? RawHTTP.Reply(status: 200, body: body) : nil
                }
            }
            func response(list: [UInt8], key: [UInt8] = bobKey.bytes) -> AccountResponse {
                AccountResponse(address: b.description, accountKey: Base64Bytes(key), deviceList: Base64Bytes(list))
            }

            let attacker = Ed25519.KeyPair()
            let attackerDevice = DeviceEntry(deviceId: 2, identityKey: Ed25519.KeyPair().publicKey, createdAt: 1)
            var flippedSignature = genuineList.encoded
            flippedSignature[flippedSignature.count - 1] ^= 0x01
            // A device appended and the version raised, the genuine signature kept.
            let extended = SignedDeviceList.sign(devices: genuineList.devices + [attackerDevice], version: 2, accountKey: attacker)
            var appended = Array(extended.encoded.dropLast(64)) + genuineList.signature
            appended.replaceSubrange(1..<33, with: bobKey.bytes)
            // Bob's account key in the list, signed by another key.
            var otherSigner = extended.encoded
            otherSigner.replaceSubrange(1..<33, with: bobKey.bytes)
            // Validly signed, by another key than the account key the relay names.
            let signedByAnother = extended.encoded

            let refused: [(what: String, forged: AccountResponse, badBytes: Bool)] = [
                ("a flipped signature bit", response(list: flippedSignature), true),
                ("a device added under the old signature", response(list: appended), true),
                ("the account key's list signed by another key", response(list: otherSigner), true),
                ("the genuine list truncated", response(list: Array(genuineList.encoded.dropLast(1))), true),
                ("a list signed by a key that is not the account key", response(list: signedByAnother), false),
            ]
            for (what, forged, badBytes) in refused {
                // Bytes that do not verify are refused by the parser on their own, too.
                if badBytes {
                    #expect(throws: ProtocolError.self, "\(what)") { try SignedDeviceList(verifying: forged.deviceList.bytes) }
                }
                serve(forged)
                await #expect(throws: (any Error).self, "\(what)") { try await alice.engine.addContact(b) }
                #expect(try alice.store.contact(b) == original, "\(what): the stored contact is unchanged")
            }
            serve(nil)
            #expect(try alice.notices(with: b) == ["You verified the safety number of \(b)."], "no forged list produced a notice")
            #expect(try await alice.engine.safetyNumber(with: b) == number)

            // The refresh paths. Bob links a second device; the relay forges the list Alice fetches then.
            let bob2 = try await bob.linkDevice(2, in: directory)
            try await bob2.engine.addContact(a)
            try await bob2.engine.send(text: "from bob's second device", to: a)
            // Receiving from the new device: the refresh fails, the message is recorded as unreadable, nothing changes.
            serve(response(list: flippedSignature))
            try await alice.engine.receivePending()
            #expect(try alice.failures(in: b).count == 1)
            #expect(try alice.store.contact(b) == original)
            // Sending: the relay asks for device 2 (409); the forged list is refused, the caller gets the
            // refusal, and the message stays queued.
            await #expect(throws: ProtocolError.self) { try await alice.engine.send(text: "while the list is forged", to: b) }
            #expect(try alice.store.contact(b) == original)
            #expect(try alice.store.outboxEntries().count == 1)
            #expect(try alice.sent(to: b).last?.state == .pending)
            // The relay stops forging: the queued message goes out to both devices, and the change is announced.
            serve(nil)
            try await alice.engine.flushOutbox()
            #expect(try alice.store.outboxEntries().isEmpty)
            #expect(try alice.notices(with: b).last == "\(b) added device #2.")
            try await bob2.engine.receivePending()
            #expect(try bob2.incomingTexts(from: a) == ["while the list is forged"])
            let current = try #require(try alice.store.contact(b))
            #expect(current.account.deviceList?.version == 2 && current.trust == .verified)

            // A relay that serves the old list again (rollback) is ignored: version 2 stays, nothing is announced.
            let noticeCount = try alice.notices(with: b).count
            serve(genuine)
            let afterRollback = try await alice.engine.addContact(b)
            #expect(afterRollback == current)
            #expect(try alice.notices(with: b).count == noticeCount)
            #expect(try await alice.engine.safetyNumber(with: b) == number)
        }
    }

    // MARK: The command line

    @Test("parley safety-number matches the engine; verify --digits/--code report match, mismatch and version; identities --json shows trust")
    func commandLine() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice.address, b = await bob.address
            try await converse(alice, bob)
            let atAlice = try await alice.engine.safetyNumber(with: b), atBob = try await bob.engine.safetyNumber(with: a)
            func cli(_ device: TestDevice, _ arguments: [String]) async throws -> ProcessResult {
                try await run(parley, arguments + ["--home", device.home, "--key-file", device.home + "/key"], in: directory)
            }
            func jsonLines(_ text: String) throws -> [[String: Any]] {
                try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
            }

            // From raw inputs: key = 0x06 ‖ AIK, id = address, as the engine uses them.
            let aliceKey = hex(KeyEncoding.encode(try accountKey(of: alice))), bobKey = hex(KeyEncoding.encode(try accountKey(of: bob)))
            var result = try await run(parley, ["safety-number", "--local-key", aliceKey, "--local-id", a.description, "--remote-key", bobKey,
                                                "--remote-id", b.description, "--scannable-version", "80"], in: directory)
            #expect(result.status == 0, "\(result.summary)")
            var lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines == [atAlice.digits, hex(atAlice.scannable)], "\(result.summary)")
            result = try await run(parley, ["safety-number", "--local-key", bobKey, "--local-id", b.description, "--remote-key", aliceKey,
                                            "--remote-id", a.description, "--scannable-version", "80"], in: directory)
            lines = result.stdout.split(separator: "\n").map(String.init)
            #expect(lines == [atBob.digits, hex(atBob.scannable)], "\(result.summary)")
            result = try await run(parley, ["safety-number", "--local-key", aliceKey, "--local-id", a.description, "--remote-key", bobKey,
                                            "--remote-id", b.description], in: directory)
            #expect(result.stdout == atAlice.digits + "\n", "without --scannable-version only the digits")

            // verify without a code shows the number.
            result = try await cli(alice, ["verify", b.description, "--json"])
            #expect(result.status == 0, "\(result.summary)")
            let shown = try #require(try jsonLines(result.stdout).first)
            #expect(shown["safetyNumber"] as? String == atAlice.digits && shown["scannableSafetyNumber"] as? String == hex(atAlice.scannable))
            result = try await cli(alice, ["verify", b.description, "--ascii"])
            #expect(result.stdout.contains(SafetyNumber.grouped(atAlice.digits).split(separator: " ").prefix(4).joined(separator: " ")))

            // A wrong number: exit 1, says so, changes nothing.
            result = try await cli(alice, ["verify", b.description, "--digits", wrongDigits(atBob.digits)])
            #expect(result.status == 1, "\(result.summary)")
            #expect(result.stdout.contains("do NOT match"), "\(result.summary)")
            result = try await cli(alice, ["trust", b.description, "--verified-safety-number", wrongDigits(atBob.digits)])
            #expect(result.status == 1 && result.stdout.contains("do NOT match"), "\(result.summary)")
            // Not a number at all: a usage error.
            result = try await cli(alice, ["verify", b.description, "--digits", "12345"])
            #expect(result.status == 1 && result.stderr.contains("--digits must be the 60 digits"), "\(result.summary)")
            // A code that is not hex, or has an odd number of digits (a sign is not a digit): usage errors.
            for (code, complaint) in [("zz" + hex(atBob.scannable), "--code is not hex"), ("+f" + hex(atBob.scannable), "--code is not hex"),
                                      (hex(atBob.scannable) + "a", "--code must be hex with an even number of digits")] {
                result = try await cli(alice, ["verify", b.description, "--code", code])
                #expect(result.status == 1 && result.stderr.contains(complaint), "\(result.summary)")
            }
            // A code of another version: reported as such.
            var v1 = atBob.scannable
            v1[1] = 1
            result = try await cli(alice, ["verify", b.description, "--code", hex(v1)])
            #expect(result.status == 1, "\(result.summary)")
            #expect(result.stdout.contains("different version (theirs 1, ours 80)"), "\(result.summary)")
            result = try await cli(alice, ["verify", b.description, "--code", hex(v1), "--json"])
            #expect(try jsonLines(result.stdout).first?["result"] as? String == "versionMismatch", "\(result.summary)")

            result = try await cli(alice, ["identities", "--json"])
            #expect(result.status == 0, "\(result.summary)")
            var identities = try jsonLines(result.stdout)
            #expect(identities.count == 1)
            #expect(identities.first?["address"] as? String == b.description && identities.first?["trustLevel"] as? String == "TRUSTED_UNVERIFIED")
            #expect(identities.first?["accountKey"] as? String == hex(try accountKey(of: bob).bytes))
            #expect(identities.first?["devices"] as? Int == 1)

            // The right digits (grouped, as read aloud): verified.
            result = try await cli(alice, ["verify", b.description, "--digits", SafetyNumber.grouped(atBob.digits)])
            #expect(result.status == 0 && result.stdout.contains("\(b) is verified."), "\(result.summary)")
            identities = try jsonLines(try await cli(alice, ["identities", "--json"]).stdout)
            #expect(identities.first?["trustLevel"] as? String == "TRUSTED_VERIFIED")
            #expect(try trust(of: b, at: alice) == .verified)
            // And the other way round with Bob scanning Alice's code.
            result = try await cli(bob, ["verify", a.description, "--code", hex(atAlice.scannable)])
            #expect(result.status == 0 && result.stdout.contains("\(a) is verified."), "\(result.summary)")
            result = try await cli(bob, ["identities"])
            #expect(result.stdout.contains("\(a)  verified  1 device"), "\(result.summary)")
        }
    }
}
