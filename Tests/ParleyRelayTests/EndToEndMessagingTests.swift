import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two accounts talking through a real relay process: online (push wake → fetch), offline (mail waits
/// in the mailbox), across relay restarts, and across a change of the recipient's device list.
@Suite("End to end: messaging through a relay process")
struct EndToEndMessagingTests {
    @Test("both connected: every message arrives through a push wake-up, and receipts come back the same way")
    func onlineExchange() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.connect()
            try await bob.connect()
            defer { alice.stopConnection(); bob.stopConnection() }

            // Nobody calls receivePending here: only the push channel makes the receivers fetch.
            var expectedAtBob: [String] = [], expectedAtAlice: [String] = []
            for round in 1...3 {
                let toBob = "hello bob, round \(round)"
                let sent = try await alice.engine.send(text: toBob, to: bobAddress)
                #expect(sent.state != .pending && sent.state != .failed, "the relay accepted the message")
                expectedAtBob.append(toBob)
                try await eventually("bob to receive \(toBob)") { try bob.incomingTexts(from: aliceAddress) == expectedAtBob }

                let toAlice = "hi alice, round \(round)"
                try await bob.engine.send(text: toAlice, to: aliceAddress)
                expectedAtAlice.append(toAlice)
                try await eventually("alice to receive \(toAlice)") { try alice.incomingTexts(from: bobAddress) == expectedAtAlice }
            }
            // Delivery receipts travel back over the same path and advance the senders' messages.
            try await eventually("alice's messages to be marked delivered") {
                try alice.sent(to: bobAddress).allSatisfy { $0.state == .delivered }
            }
            try await eventually("bob's messages to be marked delivered") {
                try bob.sent(to: aliceAddress).allSatisfy { $0.state == .delivered }
            }
            #expect(try bob.incomingTexts(from: aliceAddress) == expectedAtBob)
            #expect(try alice.incomingTexts(from: bobAddress) == expectedAtAlice)
            let fromAlice = try bob.history(with: aliceAddress).filter { $0.direction == .incoming }
            #expect(fromAlice.allSatisfy { $0.sender == DeviceAddress(address: aliceAddress.description, deviceId: 1) && $0.state == .received })
        }
    }

    @Test("receiver offline: messages sent while it is down arrive when it starts")
    func offlineExchange() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            var bob: TestDevice? = try await TestDevice.create("bob", on: relay, in: directory)
            let aliceAddress = await alice.address, bobAddress = await bob!.address
            let bobHome = bob!.home
            bob = nil  // Bob's client is not running (its store stays on disk)

            try await alice.engine.addContact(bobAddress)
            let texts = (1...5).map { "while you were away #\($0)" }
            for text in texts {
                let record = try await alice.engine.send(text: text, to: bobAddress)
                #expect(record.state == .sent, "the relay queued it for the offline device")
            }
            #expect(try alice.store.outboxEntries().isEmpty)

            // Bob starts: his store opened again from disk, a new engine, the push connection up.
            let restarted = try TestDevice.open(home: bobHome, on: relay)
            try await restarted.connect()
            defer { restarted.stopConnection() }
            try await eventually("bob to receive the queued messages") { try restarted.incomingTexts(from: aliceAddress).count >= texts.count }
            #expect(try restarted.incomingTexts(from: aliceAddress) == texts)
            let token = try await restarted.token()
            try await eventually("bob's device to acknowledge everything") { try await RawHTTP(relay).mailbox(token: token).isEmpty }
        }
    }

    @Test("a backlog of several pages: one fetch, then each acknowledgement brings the next page, all in order")
    func multiPageBacklog() async throws {
        try await withRelay { relay, directory in
            // Pages are 100 envelopes: 205 make two full pages and a short one, then an empty one ends it.
            let (_, bob, aliceAddress, texts) = try await TestDevice.backlog(205, "backlog", on: relay, in: directory)
            let token = try await bob.token()
            #expect(try await RawHTTP(relay).mailbox(token: token).count == 205)

            let arrived = try await bob.engine.receivePending()
            #expect(arrived.filter(\.isMessage).count == 205)
            #expect(try bob.incomingTexts(from: aliceAddress) == texts)
            #expect(try await RawHTTP(relay).mailbox(token: token).isEmpty, "every page was acknowledged")
        }
    }

    /// The engine is an actor, but a drain suspends at every request: a push wake's drain and a caller's
    /// receivePending can run at once, each pipelining its own pages (after=, acknowledgements of what it
    /// committed). Together they must store every message once, in order, and leave nothing queued.
    @Test("two drains at once (a push wake and receivePending): every message once, in order, mailbox empty")
    func concurrentDrains() async throws {
        try await withRelay { relay, directory in
            let (_, bob, aliceAddress, texts) = try await TestDevice.backlog(250, "concurrent", on: relay, in: directory)

            async let first = bob.engine.receivePending()
            async let second = bob.engine.receivePending()
            let arrived = try await first + second
            #expect(arrived.filter(\.isMessage).count == texts.count, "each message is reported by one drain only")
            #expect(try bob.incomingTexts(from: aliceAddress) == texts)
            #expect(try bob.failures(in: aliceAddress).isEmpty)
            #expect(try await RawHTTP(relay).mailbox(token: try await bob.token()).isEmpty)
        }
    }

    @Test("a relay killed mid-stream and restarted on the same data loses nothing and duplicates nothing",
          arguments: [SIGTERM, SIGKILL])
    func relayRestart(signal: Int32) async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let aliceAddress = await alice.address, bobAddress = await bob.address
            try await alice.engine.addContact(bobAddress)
            try await bob.connect()  // Bob stays online throughout; his push channel must reconnect by itself.
            defer { bob.stopConnection() }

            let total = 16
            let texts = (1...total).map { "message \($0) of \(total)" }
            for text in texts.prefix(4) { try await alice.engine.send(text: text, to: bobAddress) }

            // The rest are sent by a task that does not stop for errors, while the relay is killed under it;
            // the last six certainly go out while it is down.
            let killed = OnceFlag()
            let sender = Task {
                for (index, text) in texts.enumerated().dropFirst(4) {
                    if index == total - 6 { try await eventually("the relay to be killed") { killed.isSet } }
                    do { try await alice.engine.send(text: text, to: bobAddress) } catch ClientError.network {
                        // The relay is down: the message waits in the outbox.
                    }
                }
            }
            try await eventually("a few more messages to be accepted before the kill") {
                try alice.sent(to: bobAddress).filter { $0.state != .pending }.count >= 7
            }
            try await relay.stop(signal: signal)
            killed.setIfUnset()
            try await sender.value
            let accepted = try alice.sent(to: bobAddress).filter { $0.state != .pending }.count
            #expect(accepted < total, "some messages were sent while the relay was down")
            #expect(!(try alice.store.outboxEntries().isEmpty))

            try await relay.restart()
            // The outbox retries what the relay did not accept (a network error just means: not yet).
            try await eventually("alice's outbox to drain after the restart") {
                do { try await alice.engine.flushOutbox() } catch ClientError.network { return false }
                return try alice.store.outboxEntries().isEmpty
            }
            try await eventually("bob to receive all \(total) messages") { try bob.incomingTexts(from: aliceAddress).count >= total }
            bob.stopConnection()
            try await bob.engine.receivePending()  // nothing may be left over, or arrive twice
            #expect(try bob.incomingTexts(from: aliceAddress) == texts, "each message exactly once, in order")
            #expect(try alice.sent(to: bobAddress).count == total)
            #expect(try alice.sent(to: bobAddress).allSatisfy { $0.state != .pending && $0.state != .failed })
            #expect(try await RawHTTP(relay).mailbox(token: try await bob.token()).isEmpty)
        }
    }

    @Test("a stale device list: the relay answers 409, the engine refreshes, re-encrypts and reaches both devices")
    func recoversFromStaleDeviceList() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob1 = try await TestDevice.create("bob", on: relay, in: directory)
            let aliceAddress = await alice.address, bobAddress = await bob1.address
            try await alice.engine.addContact(bobAddress)
            try await alice.engine.send(text: "before the new device", to: bobAddress)
            try await bob1.engine.receivePending()
            #expect(try bob1.incomingTexts(from: aliceAddress) == ["before the new device"])

            // Bob adds a second device: a version-2 device list, published with PUT /v1/devices.
            let bob2 = try await bob1.addDevice(2, on: relay, in: directory)
            #expect(try alice.store.contact(bobAddress)?.account.deviceList?.version == 1, "alice still knows the old list")

            let record = try await alice.engine.send(text: "after the new device", to: bobAddress)
            #expect(record.state == .sent)
            #expect(try alice.store.outboxEntries().isEmpty)
            let known = try alice.store.contact(bobAddress)?.account.deviceList
            #expect(known?.version == 2 && known?.devices.map(\.deviceId) == [1, 2])

            try await bob1.engine.receivePending()
            try await bob2.engine.receivePending()
            #expect(try bob1.incomingTexts(from: aliceAddress) == ["before the new device", "after the new device"])
            #expect(try bob2.incomingTexts(from: aliceAddress) == ["after the new device"])
        }
    }

    @Test("messages queued for a stale device list go out in one request; refused, each is re-encrypted and reaches both devices once, in order")
    func batchedSendToStaleDeviceList() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob1 = try await TestDevice.create("bob", on: relay, in: directory)
            let aliceAddress = await alice.address, bobAddress = await bob1.address
            try await alice.engine.addContact(bobAddress)
            try await alice.engine.send(text: "first", to: bobAddress)
            let bob2 = try await bob1.addDevice(2, on: relay, in: directory)

            // With the relay down the sends stay in Alice's outbox, encrypted for Bob's old list.
            _ = try await relay.stop()
            let texts = (1...12).map { "queued \($0)" }
            for text in texts {
                await #expect(throws: (any Error).self) { try await alice.engine.send(text: text, to: bobAddress) }
            }
            #expect(try alice.store.outboxEntries().count == texts.count)
            #expect(Engine.requests(of: try alice.store.outboxEntries().map { [$0] }).count == 1, "all twelve fit one request")

            try await relay.restart()
            try await alice.engine.flushOutbox()
            #expect(try alice.store.outboxEntries().isEmpty)
            #expect(try alice.store.contact(bobAddress)?.account.deviceList?.devices.map(\.deviceId) == [1, 2])
            #expect(try alice.sent(to: bobAddress).allSatisfy { $0.state == .sent }, "every send completed")

            try await bob1.engine.receivePending()
            try await bob2.engine.receivePending()
            #expect(try bob1.incomingTexts(from: aliceAddress) == ["first"] + texts)
            #expect(try bob2.incomingTexts(from: aliceAddress) == texts)
        }
    }
}
