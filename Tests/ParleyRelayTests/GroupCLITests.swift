import Foundation
import Testing

/// `parley group …` and `parley send --group` on a parley-relay process, two homes made with the CLI.
@Suite("End to end: groups from the command line")
struct GroupCLITests {
    @Test("group create, send --group, receive shows the group, list, rename, leave; a malformed id is exit 1")
    func groupCommands() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, _, bobAddress) = try await CLIHome.pair("alice", "bob", on: relay, in: directory)
            try await bob.must(["receive", "--timeout", "0"])   // publishes Bob's KeyPackages
            let created = try await alice.must(["group", "create", "Trip", bobAddress, "--json"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: Any])
            let id = try #require(object["id"] as? String)
            #expect(object["name"] as? String == "Trip" && (object["members"] as? [String])?.count == 2)

            let sent = try await alice.must(["send", "--group", id, "hello", "group"])
            #expect(sent.stdout.contains("sent to group \(id)"), "\(sent.summary)")
            let received = try await bob.must(["receive", "--timeout", "0"])
            #expect(received.stdout.contains("[group \(id) \"Trip\"] alice@\(relay.name): hello group"), "\(received.summary)")
            #expect(try await bob.must(["group", "list"]).stdout.contains("\(id)  Trip  2 members, 2 devices"))

            try await bob.must(["group", "rename", id, "Road trip"])
            try await alice.must(["receive", "--timeout", "0"])
            #expect(try await alice.must(["group", "show", id]).stdout.contains("Road trip"))
            try await bob.must(["group", "leave", id])
            #expect(try await bob.must(["group", "list"]).stdout.contains("(left)"))
            let bad = try await alice.run(["send", "--group", "nonsense", "hi"])
            #expect(bad.status == 1 && bad.stderr.contains("not a group id"), "\(bad.summary)")
        }
    }
}
