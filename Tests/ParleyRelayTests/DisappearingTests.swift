import Foundation
@testable import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// Disappearing messages and retention end to end, on a real relay on loopback: a timer set on one device
/// reaches the contact's devices and the setter's other device; messages carry it and are deleted on every
/// device, by a running engine when they fall due and by the next engine to open a store after they did;
/// the policy's min_disappearing and max_retention refuse from the operations, the command line and the daemon.
@Suite("Disappearing messages and retention (real relay)")
struct DisappearingTests {
    private func texts(_ device: TestDevice, with peer: AccountAddress) throws -> [String] {
        try device.history(with: peer).filter { $0.direction != .system }.map(\.text)
    }

    private func notices(_ device: TestDevice, with peer: AccountAddress) throws -> [String] {
        try device.history(with: peer).filter { $0.direction == .system }.map(\.text)
    }

    @Test("a timer set on one device reaches the contact and the setter's second device; messages on all three are deleted at the next open after expiry")
    func timerOnBothSidesAndASecondDevice() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let alice2 = try await alice.addDevice(2, on: relay, in: directory)
            try await alice2.engine.addContact(bobAddress)
            try await alice.engine.refreshOwnDeviceList()

            let set = try await Operations(engine: alice.engine, policy: Policy()).setDisappearing(bobAddress, seconds: 60)
            #expect(set.expiration == 60 && set.timer == "1m")
            try await bob.engine.receivePending()
            try await alice2.engine.receivePending()
            #expect(try bob.engine.disappearingTimer(of: .direct(aliceAddress)) == 60)
            #expect(try alice2.engine.disappearingTimer(of: .direct(bobAddress)) == 60, "synced to the setter's other device")
            #expect(try notices(bob, with: aliceAddress) == ["\(aliceAddress) set disappearing messages to 1m"])
            #expect(try notices(alice2, with: bobAddress) == ["You set disappearing messages to 1m"])
            #expect(try notices(alice, with: bobAddress) == ["You set disappearing messages to 1m"])

            let sent = try await alice.engine.send(text: "hello under a timer", to: bobAddress)
            #expect(sent.expiresAt == sent.sentAt + 60_000)
            try await bob.engine.receivePending()
            try await bob.engine.send(text: "a reply under the same timer", to: aliceAddress)
            try await alice.engine.receivePending()
            try await alice2.engine.receivePending()
            for (device, peer) in [(alice, bobAddress), (alice2, bobAddress), (bob, aliceAddress)] {
                let history = try device.history(with: peer).filter { $0.direction != .system }
                #expect(history.map(\.text) == ["hello under a timer", "a reply under the same timer"])
                #expect(history.allSatisfy { $0.expiresAt != nil }, "every device deletes them")
            }

            // Expiry while no engine runs: the next engine to open the store, a minute later, deletes them.
            let later = FixedClock(now: SystemWallClock().nowMilliseconds() + 61_000)
            for (device, peer) in [(alice, bobAddress), (alice2, bobAddress), (bob, aliceAddress)] {
                _ = try Engine(store: device.store, relay: device.engine.relay, clock: later)
                #expect(try texts(device, with: peer).isEmpty, "\(device.home)")
                let kept = try notices(device, with: peer)
                #expect(kept.contains { $0.hasSuffix("set disappearing messages to 1m") }, "the notice of the change stays: \(kept)")
            }

            // Off again, from the second device this time: everyone follows, and new messages stay.
            _ = try await Operations(engine: alice2.engine, policy: Policy()).setDisappearing(bobAddress, seconds: nil)
            try await bob.engine.receivePending()
            try await alice.engine.receivePending()
            #expect(try bob.engine.disappearingTimer(of: .direct(aliceAddress)) == nil)
            #expect(try alice.engine.disappearingTimer(of: .direct(bobAddress)) == nil)
            #expect(try notices(bob, with: aliceAddress).last == "\(aliceAddress) turned disappearing messages off")
            #expect(try await alice.engine.send(text: "kept", to: bobAddress).expiresAt == nil)
        }
    }

    @Test("running engines delete a message on both sides when its timer runs out, and say which")
    func runningTimerDeletesAtExpiry() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            _ = try await Operations(engine: alice.engine, policy: Policy()).setDisappearing(bobAddress, seconds: 1)
            try await bob.engine.receivePending()
            let aliceEvents = await alice.engine.subscribe(), bobEvents = await bob.engine.subscribe()
            await alice.engine.startExpiryTimer()
            await bob.engine.startExpiryTimer()
            let sent = try await alice.engine.send(text: "gone in a second", to: bobAddress)
            try await bob.engine.receivePending()
            for (events, conversation) in [(aliceEvents, ConversationId.direct(bobAddress)), (bobEvents, .direct(aliceAddress))] {
                let expired = await arrives(on: events) { event in
                    if case .expired(conversation, let ids) = event { ids.contains(sent.clientMessageId) } else { false }
                }
                #expect(expired, "an expired event for \(conversation)")
            }
            #expect(try texts(alice, with: bobAddress).isEmpty)
            #expect(try texts(bob, with: aliceAddress).isEmpty)
            await alice.engine.stopExpiryTimer()
            await bob.engine.stopExpiryTimer()
        }
    }

    @Test("a lost timer change: the message's own timer deletes it, and the receiver adopts the timer")
    func messageCarriesItsTimer() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            // Alice's change of the timer never reached Bob (only her own store has it).
            _ = try await alice.engine.adoptTimer(300, in: .direct(bobAddress), by: aliceAddress)
            try await alice.engine.send(text: "after a lost change", to: bobAddress)
            try await bob.engine.receivePending()
            let received = try #require(try bob.history(with: aliceAddress).first { $0.text == "after a lost change" })
            #expect(received.expiresAt.map { $0 - received.receivedAt } == 300_000)
            #expect(try bob.engine.disappearingTimer(of: .direct(aliceAddress)) == 300)
            #expect(try await bob.engine.send(text: "answer", to: aliceAddress).expiresAt != nil, "Bob's messages now disappear too")
        }
    }

    @Test("policy: min_disappearing refuses off and longer timers and bounds what arrives; max_retention refuses a longer retention")
    func policyThroughTheOperations() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            var policy = Policy()
            policy.minDisappearing = 3600
            policy.maxRetention = 86_400
            let operations = Operations(engine: alice.engine, policy: policy)
            let off = await #expect(throws: PolicyError.self) { try await operations.setDisappearing(bobAddress, seconds: nil) }
            #expect(off.map { ErrorObject($0).code } == -6)
            #expect(off?.description.contains("min_disappearing") == true)
            await #expect(throws: PolicyError.self) { try await operations.setDisappearing(bobAddress, seconds: 7200) }
            #expect(try alice.engine.disappearingTimer(of: .direct(bobAddress)) == nil, "nothing changed")
            await #expect(throws: PolicyError.self) { try await operations.setRetention(nil) }
            await #expect(throws: PolicyError.self) { try await operations.setRetention(90 * 86_400) }
            try await operations.setRetention(3600)
            _ = try await operations.setDisappearing(bobAddress, seconds: 1800)

            // Bob (no policy) turns the timer off; Alice's device, under the policy, still deletes what he
            // sends after an hour at most, and what she sends carries that hour.
            _ = try await Operations(engine: bob.engine, policy: Policy()).setDisappearing(aliceAddress, seconds: nil)
            try await bob.engine.send(text: "no timer from me", to: aliceAddress)
            let managed = try Engine(store: alice.store, relay: alice.engine.relay, expiryLimits: policy.expiryLimits)
            try await managed.receivePending()
            #expect(try managed.disappearingTimer(of: .direct(bobAddress)) == nil, "Bob's choice is shown")
            #expect(try managed.effectiveTimer(of: .direct(bobAddress)) == 3600, "the policy's hour is applied")
            let received = try #require(try alice.history(with: bobAddress).first { $0.text == "no timer from me" })
            #expect(received.expiresAt.map { $0 - received.receivedAt } == 3_600_000)
            #expect(try await managed.send(text: "mine", to: bobAddress).expiresAt != nil)
        }
    }

    @Test("retention: older messages go when an engine opens the store, under the user's setting or the policy's max_retention alone")
    func retentionDeletesOlderMessages() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            try await alice.engine.send(text: "old news", to: bobAddress)
            try await bob.engine.receivePending()
            try await Operations(engine: bob.engine, policy: Policy()).setRetention(86_400)
            #expect(try texts(bob, with: aliceAddress) == ["old news"], "younger than the retention")
            let twoDaysLater = FixedClock(now: SystemWallClock().nowMilliseconds() + 2 * 86_400_000)
            _ = try Engine(store: bob.store, relay: bob.engine.relay, clock: twoDaysLater)
            #expect(try texts(bob, with: aliceAddress).isEmpty)
            // Alice chose no retention; an administrator's max_retention of a day deletes it all the same.
            _ = try Engine(store: alice.store, relay: alice.engine.relay, clock: twoDaysLater)
            #expect(try texts(alice, with: bobAddress) == ["old news"])
            _ = try Engine(store: alice.store, relay: alice.engine.relay, clock: twoDaysLater,
                           expiryLimits: ExpiryLimits(longestRetention: 86_400))
            #expect(try texts(alice, with: bobAddress).isEmpty)
        }
    }

    @Test("policy from the command line (exit 6) and the daemon's updateContact (code -6); parley disappear sets and shows")
    func policyFromTheCommandLineAndTheDaemon() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, _, bobAddress) = try await CLIHome.pair("alice", "bob", on: relay, in: directory)
            let policyFile = directory.sub("policy.toml")
            try Data("min_disappearing = \"1h\"\n".utf8).write(to: URL(fileURLWithPath: policyFile))
            func run(_ arguments: [String]) async throws -> ProcessResult {
                try await ParleyRelayTests.run(alice.parley, arguments + alice.options, in: directory, environment: ["PARLEY_POLICY": policyFile])
            }
            var result = try await run(["disappear", bobAddress, "off"])
            #expect(result.status == 6 && result.stderr.contains("cannot be turned off"), "\(result.summary)")
            result = try await run(["disappear", bobAddress, "2h"])
            #expect(result.status == 6 && result.stderr.contains("min_disappearing"), "\(result.summary)")
            result = try await run(["disappear", bobAddress, "soon"])
            #expect(result.status == 1, "\(result.summary)")
            result = try await run(["disappear", bobAddress, "30m", "--json"])
            #expect(result.status == 0 && result.stdout.contains("\"expiration\":1800"), "\(result.summary)")
            result = try await bob.must(["receive"])
            #expect(result.stdout.contains("set disappearing messages to 30m"), "\(result.summary)")
            result = try await bob.must(["disappear", "alice@\(relay.name)"])
            #expect(result.stdout.contains("disappear 30m"), "\(result.summary)")

            let socket = alice.path + ".sock"
            let child = try ChildProcess(alice.parley, ["daemon", "--socket", socket] + alice.options, in: directory,
                                         environment: ["PARLEY_POLICY": policyFile])
            try await eventually("the daemon to listen (stderr: \(child.stderr))") {
                guard child.process.isRunning else { throw FixtureError("the daemon exited: \(child.stderr)") }
                return (try? RPCClient(socket: socket)) != nil
            }
            let client = try RPCClient(socket: socket)
            var response = try await client.call("updateContact", ["recipient": bobAddress, "expiration": 0])
            let error = try #require(response["error"] as? [String: Any], "\(response)")
            #expect(error["code"] as? Int == -6)
            response = try await client.call("updateContact", ["recipient": bobAddress, "expiration": 600])
            let contact = try #require(response["result"] as? [String: Any], "\(response)")
            #expect(contact["expiration"] as? Int == 600 && contact["address"] as? String == bobAddress)
            #expect(try await child.stop() == 0)
        }
    }
}
