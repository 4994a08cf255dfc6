import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// A clock standing a fixed offset ahead of the real one (a device coming back after a week).
struct ShiftedClock: WallClock {
    let offset: UInt64
    func nowMilliseconds() -> UInt64 { SystemWallClock().nowMilliseconds() + offset }
}

extension TestDevice {
    /// Links a new device to `existing`'s account through the real provisioning path: slot, link code,
    /// `linkDevice` on the existing device, `completeLink` on the new one.
    static func link(to existing: TestDevice, on relay: RelayProcess, in directory: TemporaryDirectory, label: String,
                     history: Int = 0, clock: any WallClock = SystemWallClock()) async throws -> (TestDevice, LinkTransfer.Summary) {
        let client = try RelayClient(endpoint: try endpoint(for: relay))
        let pending = try await PendingLink.begin(relay: client, relayName: relay.name)
        let code = try LinkCode(text: pending.code.text)   // as the user would paste it
        async let answer = existing.engine.linkDevice(code, name: label, historyPerConversation: history)
        let payload = try await pending.waitForPayload(timeout: .seconds(60), every: .milliseconds(50))
        _ = try await answer
        let home = directory.sub("home-\(label)")
        let store = try newStore(home: home)
        let (engine, summary) = try await Engine.completeLink(payload, deviceKey: pending.deviceKey, store: store, relay: client, clock: clock)
        return (TestDevice(engine: engine, home: home), summary)
    }


    func texts(with peer: AccountAddress) throws -> [String] { try history(with: peer).filter { $0.direction != .system }.map(\.text) }
}

/// Three devices across two accounts (A1, A2, B1): linking, fan-out and sync, revocation, relinking, and a
/// device that comes back after a week.
@Suite("Multi-device: linking, fan-out and sync, revocation")
struct MultiDeviceTests {
    @Test("A1, A2 and B1: every message exactly once on every device that should see it; trust and read state sync")
    func threeDevices() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            try await a1.engine.send(text: "before the link", to: b)
            try await b1.engine.receivePending()
            let numberAtBob = try await b1.engine.safetyNumber(with: a).digits

            let (a2, summary) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-laptop", history: 10)
            #expect(summary.contacts == 1 && summary.messages == 1)
            #expect(await a2.engine.account.device.deviceId == 2)
            #expect(try a2.texts(with: b) == ["before the link"], "history came with the link")
            #expect(try a2.store.contact(b)?.account.accountKey == (try a1.store.contact(b))?.account.accountKey)
            #expect(try await a1.engine.devices().map(\.id) == [1, 2])
            #expect(try await a1.engine.devices().first { $0.id == 2 }?.name == "alice-laptop")

            try await a1.engine.send(text: "from A1", to: b)
            try await a2.engine.send(text: "from A2", to: b)
            try await b1.engine.send(text: "from B1", to: a)
            for device in [a1, a2, b1] { try await device.engine.receivePending() }
            for device in [a1, a2, b1] { try await device.engine.receivePending() }   // receipts and late copies

            #expect(try b1.texts(with: a).sorted() == ["before the link", "from A1", "from A2", "from B1"])
            #expect(try b1.incomingTexts(from: a) == ["before the link", "from A1", "from A2"])
            for device in [a1, a2] {
                let texts = try device.texts(with: b)
                #expect(texts.sorted() == ["before the link", "from A1", "from A2", "from B1"], "each exactly once")
                #expect(try device.incomingTexts(from: b) == ["from B1"])
            }
            #expect(try await b1.engine.safetyNumber(with: a).digits == numberAtBob, "adding a device keeps the safety number")
            #expect(try b1.history(with: a).contains { $0.direction == .system && $0.text.contains("added device #2") })

            // A trust decision on A1 reaches A2.
            let digits = try await a1.engine.safetyNumber(with: b).digits
            #expect(try await a1.engine.verify(b, digits: digits) == .verified)
            try await a2.engine.receivePending()
            #expect(try a2.store.contact(b)?.trust == .verified)

            // Reading on A1 marks the message read on A2, and Bob's copy as read.
            #expect(try await a1.engine.markRead(direct(b)) == 1)
            try await a2.engine.receivePending()
            try await b1.engine.receivePending()
            #expect(try a2.history(with: b).filter { $0.direction == .incoming }.map(\.state) == [.seen])
            #expect(try b1.sent(to: a).map(\.state) == [.read])
        }
    }

    @Test("a revoked device is locked out and no longer encrypted to; relinking gives a new device; the safety number stays")
    func revokeAndRelink() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            let (a2, _) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-2")
            try await b1.engine.send(text: "to both", to: a)
            let numberAtBob = try await b1.engine.safetyNumber(with: a).digits
            try await a2.engine.receivePending()
            #expect(try a2.incomingTexts(from: b) == ["to both"])

            // A2's push connection is open when it is revoked: it must end, not go on telling A2 when mail
            // arrives for the account.
            let (texts, arrived) = AsyncStream.makeStream(of: String.self)
            let push = Task {
                defer { arrived.finish() }
                try await PushSocket.run(url: "ws://\(relay.name)/v1/push",
                                         authorization: "Bearer " + (try await a2.engine.sessionToken()), tls: nil) { arrived.yield($0) }
            }
            var iterator = texts.makeAsyncIterator()
            #expect(await iterator.next() == RelayAPI.wakeToken, "connected")

            try await a1.engine.revokeDevice(2)
            #expect(try await a1.engine.devices().map(\.id) == [1])
            let timedOut = OnceFlag()
            let watchdog = Task {
                try? await Task.sleep(for: .seconds(60))
                if !Task.isCancelled, timedOut.setIfUnset() { push.cancel() }
            }
            try? await push.value
            watchdog.cancel()
            #expect(!timedOut.isSet, "the relay closed the revoked device's push connection")
            // Locked out: its token is gone and it cannot sign in again.
            await a2.engine.forgetToken()
            await #expect(throws: ClientError.self) { try await a2.engine.receivePending() }
            let raw = RawHTTP(relay)
            let challenge = try await raw.request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: a.description, deviceId: 2))
            #expect(challenge.status == 404 || challenge.status == 401)

            // Bob's next send is refused for the revoked device, refreshed, and reaches only A1.
            try await b1.engine.send(text: "after the revocation", to: a)
            try await a1.engine.receivePending()
            #expect(try a1.incomingTexts(from: b) == ["to both", "after the revocation"])
            #expect(try b1.history(with: a).contains { $0.direction == .system && $0.text.contains("removed device #2") })
            #expect(try await b1.engine.safetyNumber(with: a).digits == numberAtBob, "removing a device keeps the safety number")
            let bobsList = try #require(try b1.store.contact(a)?.account.deviceList)
            #expect(bobsList.devices.map(\.deviceId) == [1])

            // Relinking the same machine makes a new device with a new id; it reads what is sent next.
            let (again, _) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-2-again")
            #expect(await again.engine.account.device.deviceId == 3)
            try await b1.engine.send(text: "hello device three", to: a)
            try await again.engine.receivePending()
            #expect(try again.incomingTexts(from: b) == ["hello device three"])
        }
    }

    @Test("an engine opened before another device of its account was revoked elsewhere refreshes its own list and sends")
    func sendsAfterARevocationElsewhere() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            _ = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-2")
            // The chat window: an engine of its own on A1's home, opened while the account had two devices.
            let window = try Engine(store: a1.store, relay: a1.engine.relay)
            // `parley devices revoke 2` on the same home: the window's copy of the list still names device 2.
            try await a1.engine.revokeDevice(2)
            let record = try await window.send(text: "typed in the open window", to: b)
            #expect(record.state == .sent)
            #expect(await window.account.deviceList.devices.map(\.deviceId) == [1])
            try await b1.engine.receivePending()
            #expect(try b1.incomingTexts(from: a) == ["typed in the open window"])
        }
    }

    @Test("a message that could not be encrypted (the relay unreachable for a new session's bundle) is kept, marked failed")
    func unsentTextIsKept() async throws {
        try await withRelay { relay, directory in
            let (a1, _, _, b) = try await TestDevice.pair(on: relay, in: directory)
            _ = try await relay.stop()
            await #expect(throws: ClientError.self) { try await a1.engine.send(text: "typed while the relay is down", to: b) }
            let kept = try a1.sent(to: b)
            #expect(kept.map(\.text) == ["typed while the relay is down"])
            #expect(kept.map(\.state) == [.failed])
            #expect(try await a1.engine.newestFailed(in: direct(b))?.text == "typed while the relay is down", "/retry finds it")
        }
    }

    @Test("a note to self is sent at once with one device, and with two reaches the other as its own sent message")
    func noteToSelf() async throws {
        try await withRelay { relay, directory in
            let a1 = try await TestDevice.create("alice", on: relay, in: directory)
            let a = await a1.address
            // One device: nothing to deliver, nothing to wait for (`parley send` to oneself exited 3 before).
            let alone = try await Operations(engine: a1.engine).send(.init(recipients: [a], text: "note while alone"))
            #expect(alone.results.map(\.type) == [.success])
            #expect(try a1.sent(to: a).map(\.state) == [.sent])

            let (a2, _) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-2")
            let record = try await a1.engine.send(text: "note to self", to: a)
            #expect(record.state == .sent)
            try await a2.engine.receivePending()
            let synced = try a2.history(with: a).filter { $0.direction == .outgoing }
            #expect(synced.map(\.text) == ["note to self"])
            #expect(synced.map(\.state) == [.sent])
            // And back from the second device.
            #expect(try await a2.engine.send(text: "note from the laptop", to: a).state == .sent)
            try await a1.engine.receivePending()
            #expect(try a1.sent(to: a).map(\.text) == ["note while alone", "note to self", "note from the laptop"])
        }
    }

    @Test("a device offline for a simulated week catches up on everything, then writes again")
    func offlineWeek() async throws {
        try await withRelay { relay, directory in
            let (a1, b1, a, b) = try await TestDevice.pair(on: relay, in: directory)
            let (a2, _) = try await TestDevice.link(to: a1, on: relay, in: directory, label: "alice-server")
            // While A2 is away: Bob writes, A1 writes, all under certificates that A2 will find expired.
            var expected: [String] = []
            for i in 1...30 {
                let text = "message \(i) while A2 is away"
                if i % 3 == 0 { try await a1.engine.send(text: text, to: b) } else { try await b1.engine.send(text: text, to: a) }
                expected.append(text)
            }
            // A2 comes back eight days later (its clock says so): nothing lost, nothing twice.
            let week: UInt64 = 8 * 86_400_000
            let later = try Engine(store: a2.store, relay: a2.engine.relay, clock: ShiftedClock(offset: week))
            try await later.receivePending()
            let texts = try a2.texts(with: b)
            #expect(texts.sorted() == expected.sorted())
            #expect(try a2.failures(in: b).isEmpty)
            // And writes again with a renewed certificate, which Bob accepts.
            try await later.send(text: "back after a week", to: b)
            try await b1.engine.receivePending()
            #expect(try b1.incomingTexts(from: a).last == "back after a week")
        }
    }
}
