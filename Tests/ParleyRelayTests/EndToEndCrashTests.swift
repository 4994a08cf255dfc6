import Foundation
import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The no-loss promise through a real relay: a receiving `parley receive` process is SIGKILLed at random
/// moments while mail streams in (between fetch, commit, filing and acknowledgement); at the end every
/// message is in its history exactly once and the relay's mailbox is empty.
@Suite("End to end: a receiver killed at random moments loses and duplicates nothing")
struct EndToEndCrashTests {
    @Test("40 SIGKILLs of parley receive while 400 messages arrive")
    func killedReceiver() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let a = await alice.address, b = try AccountAddress("bob@\(relay.name)")
            let bobHome = directory.sub("bob")
            let initBob = try await run(parley, ["init", b.description, "--home", bobHome, "--key-file", bobHome + ".key"], in: directory)
            #expect(initBob.status == 0, "\(initBob.summary)")
            try await alice.engine.addContact(b)

            var sent: [String] = []
            var generator = SystemRandomNumberGenerator()
            var kills = 0
            for cycle in 0..<40 {
                for i in 0..<10 {
                    let text = "message \(cycle)-\(i)"
                    try await alice.engine.send(text: text, to: b)
                    sent.append(text)
                }
                let process = Process()
                process.executableURL = URL(fileURLWithPath: parley)
                process.arguments = ["receive", "--timeout", "0", "--home", bobHome, "--key-file", bobHome + ".key"]
                process.standardInput = FileHandle.nullDevice
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                // Somewhere in start-up, unlock, fetch, decrypt, commit, filing or acknowledgement.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...250, using: &generator)))
                if process.isRunning {
                    Glibc.kill(process.processIdentifier, SIGKILL)
                    kills += 1
                }
                process.waitForExitReaping()
            }
            let last = try await run(parley, ["receive", "--timeout", "0", "--home", bobHome, "--key-file", bobHome + ".key"], in: directory)
            #expect(last.status == 0, "\(last.summary)")

            let store = try EncryptedStore.open(at: bobHome + "/parley.db", unlock: .keyFile(path: bobHome + ".key"))
            let received = try store.messages(in: direct(a), limit: 10_000).filter { $0.direction == .incoming }
            #expect(received.count == sent.count, "nothing lost, nothing twice (\(kills) kills)")
            #expect(Set(received.map(\.text)) == Set(sent))
            #expect(try store.messages(in: direct(a), limit: 10_000).allSatisfy { $0.direction != .system }, "no unreadable records")
            #expect(try store.verify().rows["messages"] == sent.count)
            let token = try await RelayClient(endpoint: try TestDevice.endpoint(for: relay)).fetch(limit: 10, token: try await bobToken(store, relay))
            #expect(token.messages.isEmpty, "everything acknowledged")
            #expect(kills > 0, "the receiver was killed at least once")
        }
    }

    /// A token for Bob's device, from an engine on his store (after the test's processes are gone).
    private func bobToken(_ store: EncryptedStore, _ relay: RelayProcess) async throws -> String {
        try await Engine(store: store, relay: try RelayClient(endpoint: try TestDevice.endpoint(for: relay))).sessionToken()
    }
}
