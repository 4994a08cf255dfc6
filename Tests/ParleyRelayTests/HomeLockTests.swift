import Foundation
import Testing

/// One long-running parley process per home (`HomeLock`): real `parley` processes on one home.
@Suite("One chat window, daemon or receive per home")
struct HomeLockTests {
    @Test("a second daemon or `parley receive` on a home a daemon runs on is refused, naming the daemon; one-shot sends still work")
    func secondInstanceIsRefused() async throws {
        try await withRelay { relay, directory in
            let alice = try await CLIHome.create("alice", on: relay, in: directory)
            let bob = try await CLIHome.create("bob", on: relay, in: directory)
            try await alice.must(["add-contact", "bob@\(relay.name)"])
            let daemon = DaemonProcess(home: alice)
            try await daemon.start()
            let pid = try #require(daemon.child?.process.processIdentifier)
            let expected = "parley is already running on this home (daemon, pid \(pid))"

            let receive = try await alice.run(["receive", "--timeout", "0"])
            #expect(receive.status == 1, "\(receive.summary)")
            #expect(receive.stderr.contains(expected), "\(receive.summary)")
            let second = try await run(alice.parley, ["daemon", "--socket", alice.path + ".second.sock"] + alice.options,
                                       in: directory, timeout: .seconds(30))
            #expect(second.status == 1, "\(second.summary)")
            #expect(second.stderr.contains(expected), "\(second.summary)")
            #expect(!FileManager.default.fileExists(atPath: alice.path + ".second.sock"))

            // A one-shot command keeps no push connection open: it works beside the daemon.
            try await alice.must(["send", "bob@\(relay.name)", "sent beside the daemon"])

            try await daemon.stop()
            // The lock went with the process: no stale lock to clean up.
            try await alice.must(["receive", "--timeout", "0"])
            try await bob.must(["receive", "--timeout", "0"])
        }
    }
}
