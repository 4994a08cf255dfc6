import Foundation
import Testing

/// `parley rotate-keys` and the daemon's rotateKeys, as a user and a bot run them (relay on loopback).
@Suite("rotate-keys from the command line and the daemon")
struct RotateKeysCLITests {
    @Test("the command rotates, the contact reads the notice and messages go both ways; --account changes the safety number; the daemon's rotateKeys")
    func commandAndDaemon() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await CLIHome.pair("alice", "bob", on: relay, in: directory)
            try await alice.must(["send", bobAddress, "before"])
            try await bob.must(["receive"])
            func safetyNumber() async throws -> String? {
                let lines = try await alice.must(["identities", "--json"]).stdout.split(separator: "\n")
                for line in lines {
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    if object?["address"] as? String == bobAddress { return object?["safetyNumber"] as? String }
                }
                return nil
            }
            let numberBefore = try #require(try await safetyNumber())

            var result = try await bob.must(["rotate-keys", "--json"])
            let rotated = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.summary)")
            #expect(rotated["rotated"] as? String == "device" && rotated["device"] as? Int == 1)
            #expect(rotated["deviceKey"] as? String != rotated["previousDeviceKey"] as? String)
            #expect(rotated["accountKey"] as? String == rotated["previousAccountKey"] as? String)

            try await alice.must(["send", bobAddress, "after"])
            result = try await bob.must(["receive"])
            #expect(result.stdout.contains("after"), "\(result.summary)")
            try await bob.must(["send", aliceAddress, "answer"])
            result = try await alice.must(["receive"])
            #expect(result.stdout.contains("answer"), "\(result.summary)")
            #expect(try await safetyNumber() == numberBefore)

            result = try await bob.must(["rotate-keys", "--account"])
            #expect(result.stdout.contains("contacts must verify the new safety number"), "\(result.summary)")
            // Bob was not verified: on first use the new key is accepted and announced; the number is new.
            try await alice.must(["send", bobAddress, "to the new key"])
            result = try await bob.must(["receive"])
            #expect(result.stdout.contains("to the new key"), "\(result.summary)")
            #expect(try await safetyNumber() != numberBefore)

            // The daemon rotates the device key of the account it serves, in process.
            let socket = bob.path + ".sock"
            let child = try ChildProcess(bob.parley, ["daemon", "--socket", socket] + bob.options, in: directory)
            try await eventually("the daemon to listen (stderr: \(child.stderr))") {
                guard child.process.isRunning else { throw FixtureError("the daemon exited: \(child.stderr)") }
                return (try? RPCClient(socket: socket)) != nil
            }
            let client = try RPCClient(socket: socket)
            let response = try await client.call("rotateKeys", [:])
            let answer = try #require(response["result"] as? [String: Any], "\(response)")
            #expect(answer["rotated"] as? String == "device", "\(answer)")
            #expect(try await child.stop() == 0)
        }
    }
}
