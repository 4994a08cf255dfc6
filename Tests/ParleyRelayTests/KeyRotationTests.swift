import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// `parley rotate-keys` (PROTOCOL.md §3.5) against a real relay on loopback: a new device key keeps the
/// safety number and restarts sessions; a new account key changes it, vouched for by the old key's
/// statement, which the relay and the contact's client check and which never makes the new key trusted.
@Suite("Key rotation: a new device key, a new account key")
struct KeyRotationTests {
    private func texts(_ device: TestDevice, with peer: AccountAddress, _ direction: MessageDirection) throws -> [String] {
        try device.history(with: peer).filter { $0.direction == direction && $0.state != .failed }.map(\.text)
    }

    private func sessionKeys(_ device: TestDevice, with peer: DeviceAddress) throws -> [[UInt8]] {
        let sessions = try device.store.sessions(for: peer)
        return ([sessions.active].compactMap { $0 } + sessions.inactive).map(\.remoteIdentityKey.bytes)
    }

    @Test("a new device key: both directions deliver, the contact is told, old sessions are gone, the safety number stays")
    func deviceKeyRotation() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "before", to: bobAddress)
            _ = try await bob.engine.receivePending()
            try await bob.engine.send(text: "before too", to: aliceAddress)
            _ = try await alice.engine.receivePending()
            let bobsDevice = DeviceAddress(address: bobAddress.description, deviceId: 1)
            let oldKey = await bob.engine.account.device.publicKey.bytes
            #expect(try sessionKeys(alice, with: bobsDevice) == [oldKey])
            let numberBefore = try await alice.engine.safetyNumber(with: bobAddress).digits
            #expect(try await alice.engine.verify(bobAddress, digits: numberBefore) == .verified)

            let rotated = try await Operations(engine: bob.engine).rotateKeys(account: false)
            let newKey = await bob.engine.account.device.publicKey.bytes
            #expect(rotated.rotated == "device" && rotated.device == 1 && newKey != oldKey)
            #expect(rotated.deviceKey == Hex.encode(newKey) && rotated.previousDeviceKey == Hex.encode(oldKey))
            #expect(rotated.accountKey == rotated.previousAccountKey)
            // Every session of Bob's went with the old key.
            #expect(try bob.store.deviceIdsWithSessions(of: aliceAddress).isEmpty)

            // Bob writes first: Alice learns the new key from the relay's list, and a new session starts.
            try await bob.engine.send(text: "after, from bob", to: aliceAddress)
            _ = try await alice.engine.receivePending()
            #expect(try texts(alice, with: bobAddress, .incoming) == ["before too", "after, from bob"])
            let notices = try alice.history(with: bobAddress).filter { $0.direction == .system }.map(\.text)
            #expect(notices.contains("\(bobAddress)'s device 1 has a new key."), "\(notices)")
            #expect(try sessionKeys(alice, with: bobsDevice) == [newKey])
            // Verified stays verified: the account key, and so the safety number, did not change.
            #expect(try await alice.engine.safetyNumber(with: bobAddress).digits == numberBefore)
            #expect(try alice.store.contact(bobAddress)?.trust == .verified)

            try await alice.engine.send(text: "after, from alice", to: bobAddress)
            _ = try await bob.engine.receivePending()
            #expect(try texts(bob, with: aliceAddress, .incoming) == ["before", "after, from alice"])

            // A second rotation, and this time Alice writes first: the relay refuses her envelope sealed to
            // the old key (410), she fetches the list and starts a session with the new key. (Alice reads
            // Bob's receipt first: what Bob's old key sealed and she reads after learning the new key would be
            // unreadable, PROTOCOL.md §3.5.)
            _ = try await alice.engine.receivePending()
            _ = try await Operations(engine: bob.engine).rotateKeys(account: false)
            let newestKey = await bob.engine.account.device.publicKey.bytes
            let sent = try await alice.engine.send(text: "second, from alice", to: bobAddress)
            #expect(sent.state == .sent)
            #expect(try sessionKeys(alice, with: bobsDevice) == [newestKey])
            _ = try await bob.engine.receivePending()
            #expect(try texts(bob, with: aliceAddress, .incoming) == ["before", "after, from alice", "second, from alice"])
            try await bob.engine.send(text: "second, from bob", to: aliceAddress)
            _ = try await alice.engine.receivePending()
            #expect(try texts(alice, with: bobAddress, .incoming).last == "second, from bob")
            #expect(try alice.failures(in: bobAddress).isEmpty && bob.failures(in: aliceAddress).isEmpty)
            #expect(try await alice.engine.safetyNumber(with: bobAddress).digits == numberBefore)
        }
    }

    @Test("a new account key: the contact sees the old key's statement, a new safety number, and must verify again")
    func accountKeyRotation() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "before", to: bobAddress)
            _ = try await bob.engine.receivePending()
            let numberBefore = try await alice.engine.safetyNumber(with: bobAddress).digits
            #expect(try await alice.engine.verify(bobAddress, digits: numberBefore) == .verified)
            let oldAccountKey = await bob.engine.account.accountKey.publicKey

            let rotated = try await Operations(engine: bob.engine).rotateKeys(account: true)
            let newAccountKey = await bob.engine.account.accountKey.publicKey
            #expect(rotated.rotated == "account" && rotated.accountKey == Hex.encode(newAccountKey.bytes))
            #expect(rotated.previousAccountKey == Hex.encode(oldAccountKey.bytes) && newAccountKey != oldAccountKey)
            // The relay serves the new key with the statement that the old key signed.
            let served = try await RelayClient(endpoint: try TestDevice.endpoint(for: relay)).account(bobAddress.description)
            #expect(served.accountKey.bytes == newAccountKey.bytes)
            let statement = try AccountKeyChange(verifying: try #require(served.keyChange).bytes)
            try statement.check(address: bobAddress.description, oldKey: oldAccountKey, newKey: newAccountKey)

            // Alice's send is refused for the old device key; she fetches the list, sees the new account key,
            // and (Bob was verified) sending stops until she verifies the new number.
            await #expect(throws: ClientError.identityChanged(bobAddress)) {
                try await alice.engine.send(text: "stopped", to: bobAddress)
            }
            #expect(try alice.store.contact(bobAddress)?.trust == .changed)
            #expect(try alice.store.contact(bobAddress)?.account.accountKey == newAccountKey)
            let notice = try #require(try alice.history(with: bobAddress).last { $0.direction == .system }).text
            #expect(notice.contains("The identity key of \(bobAddress) changed.") && notice.contains("The old key signed the change"), "\(notice)")
            #expect(notice.contains("does not make the new key trusted"))
            let numberAfter = try await alice.engine.safetyNumber(with: bobAddress).digits
            #expect(numberAfter != numberBefore)
            #expect(try await bob.engine.safetyNumber(with: aliceAddress).digits == numberAfter)

            // Verifying the new number lets messages go, in new sessions, both ways.
            #expect(try await alice.engine.verify(bobAddress, digits: numberAfter) == .verified)
            try await alice.engine.send(text: "after verifying", to: bobAddress)
            _ = try await bob.engine.receivePending()
            #expect(try texts(bob, with: aliceAddress, .incoming) == ["before", "after verifying"])
            try await bob.engine.send(text: "with the new key", to: aliceAddress)
            _ = try await alice.engine.receivePending()
            #expect(try texts(alice, with: bobAddress, .incoming) == ["with the new key"])
        }
    }

    @Test("a key change signed by another key, or for another account, is refused by the relay and changes nothing")
    func forgedKeyChangesAreRefused() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let before = try await client.account(bobAddress.description)
            let bobsKey = await bob.engine.account.accountKey, bobsList = await bob.engine.account.deviceList
            let aliceAddress = await alice.address
            let newKey = Ed25519.KeyPair()
            let list = SignedDeviceList.sign(devices: bobsList.devices, version: bobsList.version + 1, accountKey: newKey)
            let now = UInt64(Date().timeIntervalSince1970 * 1000)

            let forged = [
                // Signed by a key that is not Bob's.
                AccountKeyChange.sign(address: bobAddress.description, oldKey: Ed25519.KeyPair(), newKey: newKey.publicKey, signedAt: now).encoded,
                // Bob's key, but a statement about Alice's account.
                AccountKeyChange.sign(address: aliceAddress.description, oldKey: bobsKey, newKey: newKey.publicKey, signedAt: now).encoded,
                // Bob's key and account, naming another new key than the list's.
                AccountKeyChange.sign(address: bobAddress.description, oldKey: bobsKey, newKey: Ed25519.KeyPair().publicKey, signedAt: now).encoded,
                // A valid statement with one bit of its signature flipped.
                { var bytes = AccountKeyChange.sign(address: bobAddress.description, oldKey: bobsKey, newKey: newKey.publicKey, signedAt: now).encoded
                  bytes[bytes.count - 1] ^= 1
                  return bytes }(),
            ]
            for statement in forged {
                let request = AccountKeyChangeRequest(keyChange: Base64Bytes(statement), deviceList: Base64Bytes(list.encoded))
                do {
                    try await client.changeAccountKey(request, address: bobAddress.description)
                    Issue.record("the relay accepted a forged key change")
                } catch ClientError.relay(let status, _, _) {
                    #expect(status == 403)
                }
                // The client refuses it too, before trusting anything it says.
                #expect(throws: ProtocolError.self) {
                    try AccountKeyChange(verifying: statement).check(address: bobAddress.description, oldKey: bobsKey.publicKey, newKey: newKey.publicKey)
                }
            }
            // Also refused on this account's address for Alice's account (her key did not sign it).
            let aboutAlice = AccountKeyChange.sign(address: aliceAddress.description, oldKey: bobsKey, newKey: newKey.publicKey, signedAt: now)
            await #expect(throws: ClientError.self) {
                try await client.changeAccountKey(AccountKeyChangeRequest(keyChange: Base64Bytes(aboutAlice.encoded), deviceList: Base64Bytes(list.encoded)),
                                                  address: aliceAddress.description)
            }
            #expect(try await client.account(bobAddress.description) == before)
            #expect(before.keyChange == nil)
            // Bob's device still signs in and receives.
            try await alice.engine.send(text: "still here", to: bobAddress)
            _ = try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == ["still here"])
            // A statement a hostile relay could serve is shown as not valid, never as signed by the old key.
            let words = Engine.keyChangeWords(forged[0], address: bobAddress, oldKey: bobsKey.publicKey, newKey: newKey.publicKey)
            #expect(words.contains("not valid") && !words.contains("The old key signed"), "\(words)")
        }
    }

    @Test("a rotation whose list did not reach the relay is published at the next sign-in")
    func interruptedRotationIsFinished() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let unreachable = try RelayClient(endpoint: try RelayEndpoint(relay: "127.0.0.1:\(try RelayProcess.freePort())", tls: false, caFile: nil))
            // Rotate with a transport that reaches the relay for everything but the publication.
            let engine = try Engine(store: bob.store, relay: PublishingFails(inner: bob.engine.relay, unreachable: unreachable))
            await #expect(throws: ClientError.self) { _ = try await engine.rotateDeviceKey() }
            let stored = try #require(try bob.store.localAccount()).device.publicKey
            let published = try SignedDeviceList(verifying: try await bob.engine.relay.account(bobAddress.description).deviceList.bytes)
            #expect(published.device(1)?.identityKey != stored)

            // The next sign-in is refused for the new key, finds the relay's list older, and publishes it.
            let restarted = try TestDevice.open(home: bob.home, on: relay)
            _ = try await restarted.engine.receivePending()
            try await alice.engine.send(text: "after the interruption", to: bobAddress)
            _ = try await restarted.engine.receivePending()
            #expect(try restarted.incomingTexts(from: aliceAddress) == ["after the interruption"])
            let now = try SignedDeviceList(verifying: try await bob.engine.relay.account(bobAddress.description).deviceList.bytes)
            #expect(now.device(1)?.identityKey == stored)
        }
    }
}

/// A transport whose device-list publication fails as if the relay could not be reached.
private struct PublishingFails: ForwardingTransport {
    let inner: any RelayTransport
    let unreachable: any RelayTransport
    func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError) {
        try await unreachable.publishDeviceList(update, address: address)
    }
    func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(ClientError) {
        try await unreachable.changeAccountKey(request, address: address)
    }
}
