import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `parley link` and `parley devices` as a person runs them: the new machine waits with a code, the
/// existing one answers it, lists, names and revokes.
@Suite("End to end: linking devices from the command line")
struct EndToEndDeviceCLITests {
    @Test("link --json waits for devices add; devices lists, names and revokes; a bad code and an unknown device exit 1")
    func linkAndRevoke() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            let alice = "alice@\(relay.name)", bob = "bob@\(relay.name)"
            let home1 = directory.sub("alice1"), home2 = directory.sub("alice2"), bobHome = directory.sub("bob")
            func parleyRun(_ arguments: [String], home: String) async throws -> ProcessResult {
                try await run(parley, arguments + ["--home", home, "--key-file", home + ".key"], in: directory)
            }
            #expect(try await parleyRun(["init", alice], home: home1).status == 0)
            #expect(try await parleyRun(["init", bob], home: bobHome).status == 0)
            #expect(try await parleyRun(["add-contact", bob], home: home1).status == 0)
            #expect(try await parleyRun(["send", bob, "first"], home: home1).status == 0)

            // The new machine: `parley link` prints the code and waits.
            let out = directory.sub("link.out"), err = directory.sub("link.err")
            FileManager.default.createFile(atPath: out, contents: nil)
            FileManager.default.createFile(atPath: err, contents: nil)
            let link = Process()
            link.executableURL = URL(fileURLWithPath: parley)
            link.arguments = ["link", relay.name, "--json", "--timeout", "120", "--home", home2, "--key-file", home2 + ".key"]
            link.standardInput = FileHandle.nullDevice
            link.standardOutput = FileHandle(forWritingAtPath: out)
            link.standardError = FileHandle(forWritingAtPath: err)
            try link.run()
            defer { if link.isRunning { Glibc.kill(link.processIdentifier, SIGKILL) } }
            func lines() -> [[String: Any]] {
                ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n")
                    .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            }
            try await eventually("parley link to print its code") { lines().first?["code"] != nil }
            let code = try #require(lines().first?["code"] as? String)
            #expect(code.hasPrefix("parley-link:"))

            var result = try await parleyRun(["devices", "add", "parley-link:garbage"], home: home1)
            #expect(result.status == 1, "\(result.summary)")
            result = try await parleyRun(["devices", "add", code, "--name", "laptop", "--history", "5", "--json"], home: home1)
            #expect(result.status == 0, "\(result.summary)")
            try await eventually("parley link to finish") { !link.isRunning }
            #expect(link.terminationStatus == 0, "\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
            let linked = try #require(lines().last)
            #expect(linked["type"] as? String == "linked" && linked["device"] as? Int == 2 && linked["messages"] as? Int == 1)

            result = try await parleyRun(["devices", "--json"], home: home2)
            #expect(result.status == 0, "\(result.summary)")
            let listed = result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(listed.compactMap { $0["id"] as? Int } == [1, 2])
            #expect(listed.first { $0["id"] as? Int == 2 }?["thisDevice"] as? Bool == true)
            #expect(listed.first { $0["id"] as? Int == 2 }?["name"] as? String == "laptop")

            // The new device talks: Bob gets it, and device 1 gets the copy.
            #expect(try await parleyRun(["send", bob, "from the laptop"], home: home2).status == 0)
            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: bobHome)
            #expect(result.stdout.contains("from the laptop"), "\(result.summary)")
            // (A copy of what this account sent is no notification, so not in --json: the plain line shows it.)
            result = try await parleyRun(["receive", "--timeout", "0"], home: home1)
            #expect(result.stdout.contains("(you, to \(bob)): from the laptop"), "\(result.summary)")

            result = try await parleyRun(["devices", "revoke", "9"], home: home1)
            #expect(result.status == 1 && result.stderr.contains("no device #9"), "\(result.summary)")
            result = try await parleyRun(["devices", "revoke", "1"], home: home1)
            #expect(result.status == 1, "revoking the device in use is refused: \(result.summary)")
            result = try await parleyRun(["devices", "revoke", "2"], home: home1)
            #expect(result.status == 0, "\(result.summary)")
            result = try await parleyRun(["receive", "--timeout", "0"], home: home2)
            #expect(result.status == 3, "a revoked device is refused by the relay: \(result.summary)")
            #expect(result.stderr.contains("revoked"), "\(result.summary)")
            // Sending from it says so, and does not promise a delivery that can never happen.
            result = try await parleyRun(["send", bob, "from a revoked laptop"], home: home2)
            #expect(result.status == 3 && result.stderr.contains("revoked"), "\(result.summary)")
            #expect(!result.stdout.contains("retried"), "\(result.summary)")
        }
    }
}
