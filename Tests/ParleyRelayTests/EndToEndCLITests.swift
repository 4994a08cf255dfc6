import Foundation
import Testing

/// The `parley` executable against a relay process: two homes unlocked by key files.
@Suite("End to end: the parley command line")
struct EndToEndCLITests {
    @Test("init, add-contact, send and receive --json between two homes; a non-contact exits 1, a stopped relay 3")
    func commandLine() async throws {
        try await withRelay { relay, directory in
            let homes = try TwoHomes(relay: relay, directory: directory)
            let (alice, bob, aliceHome, bobHome) = (homes.alice, homes.bob, homes.aliceHome, homes.bobHome)
            func parleyRun(_ arguments: [String], home: String, standardInput: String? = nil) async throws -> ProcessResult {
                try await homes.run(arguments, home: home, standardInput: standardInput)
            }
            /// The messages of `receive --json` lines (the daemon's `receive` params): each envelope with its
            /// dataMessage's members beside its own.
            func messages(in output: String) throws -> [[String: Any]] {
                try output.split(separator: "\n").compactMap { line in
                    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
                    guard let envelope = object["envelope"] as? [String: Any], let data = envelope["dataMessage"] as? [String: Any] else { return nil }
                    return envelope.merging(data) { _, inner in inner }
                }
            }

            var result = try await parleyRun(["init", alice], home: aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            #expect(result.stdout.contains("created \(alice)"))
            result = try await parleyRun(["init", bob], home: bobHome)
            #expect(result.status == 0, "\(result.summary)")

            result = try await parleyRun(["add-contact", bob], home: aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            result = try await parleyRun(["send", bob, "hello from the command line"], home: aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            #expect(result.stdout.contains("sent to \(bob)"), "\(result.summary)")

            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: bobHome)
            #expect(result.status == 0, "\(result.summary)")
            let received = try messages(in: result.stdout)
            #expect(received.count == 1, "\(result.summary)")
            #expect(received.first?["message"] as? String == "hello from the command line")
            #expect(received.first?["source"] as? String == alice)

            // Bob answers (Alice became known on first use); Alice reads it.
            result = try await parleyRun(["send", alice, "and hello back"], home: bobHome)
            #expect(result.status == 0, "\(result.summary)")
            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            #expect(try messages(in: result.stdout).compactMap { $0["message"] as? String } == ["and hello back"], "\(result.summary)")

            // '-' reads the text from standard input; the line end that ends the input is not part of it.
            result = try await parleyRun(["send", alice, "-"], home: bobHome, standardInput: "two lines\nfrom a pipe\n")
            #expect(result.status == 0, "\(result.summary)")
            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: aliceHome)
            #expect(try messages(in: result.stdout).compactMap { $0["message"] as? String } == ["two lines\nfrom a pipe"], "\(result.summary)")

            // A mistyped command is not taken for a contact's name.
            result = try await parleyRun(["recieve"], home: aliceHome)
            #expect(result.status == 1 && result.stderr.contains("'recieve' is neither a command nor a contact"), "\(result.summary)")

            // Sending to someone who is not a contact: usage error, and it says what to do.
            result = try await parleyRun(["send", "carol@\(relay.name)", "who are you"], home: aliceHome)
            #expect(result.status == 1, "\(result.summary)")
            #expect(result.stderr.contains("carol@\(relay.name) is not a contact"), "\(result.summary)")
            #expect(result.stderr.contains("parley add-contact"))

            // The relay stops: receiving fails with the network status, sending keeps the message.
            try await relay.stop()
            result = try await parleyRun(["receive", "--timeout", "0"], home: bobHome)
            #expect(result.status == 3, "\(result.summary)")
            #expect(result.stderr.contains("cannot reach the relay"), "\(result.summary)")
            result = try await parleyRun(["send", bob, "written while the relay was down"], home: aliceHome)
            #expect(result.status == 3, "\(result.summary)")
            #expect(result.stdout.contains("saved in the outbox"), "\(result.summary)")

            // Back up: Alice's next command delivers the outbox, and Bob gets the message.
            try await relay.restart()
            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            result = try await parleyRun(["receive", "--json", "--timeout", "0"], home: bobHome)
            #expect(result.status == 0, "\(result.summary)")
            #expect(try messages(in: result.stdout).compactMap { $0["message"] as? String } == ["written while the relay was down"],
                    "\(result.summary)")
        }
    }

    @Test("receive names a message's file and the command that saves it; control characters others wrote are shown, not obeyed")
    func receiveShowsFilesSafely() async throws {
        try await withRelay { relay, directory in
            let homes = try TwoHomes(relay: relay, directory: directory)
            let (alice, bob, aliceHome, bobHome) = (homes.alice, homes.bob, homes.aliceHome, homes.bobHome)
            func parleyRun(_ arguments: [String], home: String) async throws -> ProcessResult {
                let result = try await homes.run(arguments, home: home)
                #expect(result.status == 0, "\(arguments): \(result.summary)")
                return result
            }
            _ = try await parleyRun(["init", alice], home: aliceHome)
            _ = try await parleyRun(["init", bob], home: bobHome)
            _ = try await parleyRun(["add-contact", bob], home: aliceHome)
            FileManager.default.createFile(atPath: directory.sub("notes.txt"), contents: Data("twelve bytes".utf8))
            _ = try await parleyRun(["send", bob, "--attachment", directory.sub("notes.txt"), "the notes"], home: aliceHome)
            _ = try await parleyRun(["send", bob, "bell\u{07} and a new title \u{1B}]0;owned\u{07}"], home: aliceHome)
            _ = try await parleyRun(["send", bob, "two\nmallory@\(relay.name): a forged line, \u{202E}txt.exe"], home: aliceHome)

            let text = try await parleyRun(["receive", "--timeout", "0"], home: bobHome).stdout
            let lines = text.split(separator: "\n").map(String.init)
            let fileLine = try #require(lines.first { $0.contains("the notes") }, "\(text)")
            #expect(fileLine.contains("[file notes.txt, 12 bytes: parley get-attachment \(alice) "), "\(fileLine)")
            #expect(lines.contains("\(alice): bell^G and a new title ^[]0;owned^G"), "\(text)")
            #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E })
            // A line end in a message starts an indented line: no line of output can pass for another message.
            #expect(lines.contains("\(alice): two") && lines.contains("    mallory@\(relay.name): a forged line, \u{FFFD}txt.exe"), "\(text)")
            #expect(!lines.contains { $0.hasPrefix("mallory@") })

            // The id shown is the one get-attachment takes; --json carries the file's details instead.
            let id = try #require(fileLine.split(separator: " ").last.map { String($0.dropLast()) })
            let saved = try await parleyRun(["get-attachment", alice, id, "--output", directory.sub("saved.txt")], home: bobHome)
            #expect(saved.stdout.contains("saved 12 bytes"))
            #expect(FileManager.default.contents(atPath: directory.sub("saved.txt")) == Data("twelve bytes".utf8))
            _ = try await parleyRun(["send", bob, "--attachment", directory.sub("notes.txt"), "again"], home: aliceHome)
            let json = try await parleyRun(["receive", "--json", "--timeout", "0"], home: bobHome).stdout
            let message = try #require(try json.split(separator: "\n").compactMap {
                ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["envelope"] as? [String: Any])?["dataMessage"] as? [String: Any]
            }.first, "\(json)")
            let file = try #require((message["attachments"] as? [[String: Any]])?.first, "\(json)")
            #expect(file["filename"] as? String == "notes.txt" && file["size"] as? Int == 12 && file["contentType"] as? String == "text/plain")
        }
    }

    @Test("an address argument with '@' that is not NAME@HOST[:PORT] is a usage error (1) naming it, before the store is opened")
    func malformedAddressArgument() async throws {
        try await withRelay { relay, directory in
            let homes = try TwoHomes(relay: relay, directory: directory)
            var result = try await homes.run(["init", homes.alice], home: homes.aliceHome)
            #expect(result.status == 0, "\(result.summary)")
            let id = String(repeating: "ab", count: 16)
            // Text without '@' may be a short name (a nickname, or one contact's name), looked up once the
            // store is open (sendByShortName); text with '@' must be an address.
            let bad = "not@an@address"
            for arguments in [["send", bad, "hi"], ["add-contact", bad], ["verify", bad],
                              ["trust", bad], ["send-typing", bad],
                              ["send-receipt", bad, "--target-timestamp", "1"], ["get-attachment", bad, id],
                              ["search", "hi", "--contact", bad], ["devices", "list", bad]] {
                result = try await homes.run(arguments, home: homes.aliceHome)
                #expect(result.status == 1, "\(arguments): \(result.summary)")
                #expect(result.stderr.contains("'\(bad)'") && result.stderr.contains("expected NAME@HOST[:PORT]"),
                        "\(arguments): \(result.summary)")
            }
            // Refused before the store was opened: a key file that cannot unlock it is not even read.
            result = try await ParleyRelayTests.run(homes.parley, ["send", bad, "hi", "--home", homes.aliceHome,
                                                                   "--key-file", directory.sub("missing.key")], in: directory)
            #expect(result.status == 1 && result.stderr.contains("expected NAME@HOST[:PORT]"), "\(result.summary)")
        }
    }

    @Test("send, verify and search take a nickname or one contact's name as the window does; unknown and ambiguous names are clear errors")
    func sendByShortName() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, _, bobAddress) = try await CLIHome.pair("alice", "bob", on: relay, in: directory)
            var result = try await alice.run(["send", "bob", "by name"])
            #expect(result.status == 0 && result.stdout.contains("to \(bobAddress)"), "\(result.summary)")
            try await alice.must(["contacts", "rename", "bob", "Bobby"])
            result = try await alice.run(["send", "bobby", "by nickname"])
            #expect(result.status == 0, "\(result.summary)")
            result = try await bob.run(["receive", "--timeout", "0"])
            #expect(result.stdout.contains("by name") && result.stdout.contains("by nickname"), "\(result.summary)")
            for arguments in [["verify", "Bobby"], ["search", "by", "--contact", "bob"], ["send-typing", "bob"], ["devices", "list", "bobby"]] {
                result = try await alice.run(arguments)
                #expect(result.status == 0, "\(arguments): \(result.summary)")
            }

            // Nobody is called dave: exit 1, nothing saved.
            result = try await alice.run(["send", "dave", "lost"])
            #expect(result.status == 1 && result.stderr.contains("'dave' is neither an address"), "\(result.summary)")
            // Two contacts named bob: refused, naming both.
            let elsewhere = try TemporaryDirectory()
            try await withRelay(in: elsewhere) { other, otherDirectory in
                _ = try await CLIHome.create("bob", on: other, in: otherDirectory)
                try await alice.must(["add-contact", "bob@\(other.name)"])
                try await alice.must(["contacts", "rename", bobAddress, ""])
                result = try await alice.run(["send", "bob", "which one?"])
                #expect(result.status == 1 && result.stderr.contains(bobAddress) && result.stderr.contains("bob@\(other.name)"),
                        "\(result.summary)")
            }
            result = try await alice.run(["search", "which one"])
            #expect(result.status == 0 && result.stdout.contains("no messages contain"), "\(result.summary)")
        }
    }

    @Test("an init the relay refuses leaves no home, store or key file behind, so the next one starts clean")
    func refusedInitLeavesNothing() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            let address = "dana@\(relay.name)"
            let first = try await run(parley, ["init", address, "--home", directory.sub("first"), "--key-file", directory.sub("first.key")], in: directory)
            #expect(first.status == 0, "\(first.summary)")
            let taken = try await run(parley, ["init", address, "--home", directory.sub("second"), "--key-file", directory.sub("second.key")], in: directory)
            #expect(taken.status == 3 && taken.stderr.contains("is taken"), "\(taken.summary)")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("second")), "no home left")
            #expect(!FileManager.default.fileExists(atPath: directory.sub("second.key")), "no key file left")
            // A key file that was there before stays.
            let keyFile = directory.sub("mine.key")
            _ = try await run(parley, ["init", "erin@\(relay.name)", "--home", directory.sub("erin"), "--key-file", keyFile], in: directory)
            let again = try await run(parley, ["init", address, "--home", directory.sub("third"), "--key-file", keyFile], in: directory)
            #expect(again.status == 3, "\(again.summary)")
            #expect(FileManager.default.fileExists(atPath: keyFile), "a key file this run did not make is kept")
        }
    }

    @Test("after the account is restored from a backup elsewhere, the old device is told so instead of a bare 401")
    func oldDeviceAfterRestore() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            let address = "fay@\(relay.name)"
            func parleyRun(_ arguments: [String], home: String) async throws -> ProcessResult {
                try await run(parley, arguments + ["--home", directory.sub(home), "--key-file", directory.sub(home + ".key")], in: directory,
                              environment: ["PARLEY_BACKUP_PASSPHRASE": "correct horse battery staple"])
            }
            #expect(try await parleyRun(["init", address], home: "old").status == 0)
            #expect(try await parleyRun(["backup", "export", directory.sub("fay.backup")], home: "old").status == 0)
            let restored = try await parleyRun(["backup", "import", directory.sub("fay.backup")], home: "new")
            #expect(restored.status == 0, "\(restored.summary)")
            let old = try await parleyRun(["receive", "--timeout", "0"], home: "old")
            #expect(old.status == 3, "\(old.summary)")
            #expect(old.stderr.contains("restored from a backup elsewhere") && !old.stderr.contains("401"), "\(old.summary)")
        }
    }

    @Test("a restore with the wrong passphrase into a directory that holds other files leaves them, and leaves nothing of its own")
    func failedRestoreKeepsTheDirectory() async throws {
        let parley = try Binaries.path("parley")
        try await withRelay { relay, directory in
            func parleyRun(_ arguments: [String], home: String, passphrase: String) async throws -> ProcessResult {
                try await run(parley, arguments + ["--home", directory.sub(home), "--key-file", directory.sub(home + ".key")], in: directory,
                              environment: ["PARLEY_BACKUP_PASSPHRASE": passphrase])
            }
            #expect(try await parleyRun(["init", "gus@\(relay.name)"], home: "gus", passphrase: "right").status == 0)
            #expect(try await parleyRun(["backup", "export", directory.sub("gus.backup")], home: "gus", passphrase: "right").status == 0)
            try FileManager.default.createDirectory(atPath: directory.sub("documents"), withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: directory.sub("documents/keep.txt"), contents: Data("mine".utf8))

            let wrong = try await parleyRun(["backup", "import", directory.sub("gus.backup")], home: "documents", passphrase: "wrong")
            #expect(wrong.status == 1 && wrong.stderr.contains("wrong backup passphrase"), "\(wrong.summary)")
            #expect(FileManager.default.contents(atPath: directory.sub("documents/keep.txt")) == Data("mine".utf8))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.sub("documents")) == ["keep.txt"])
            #expect(!FileManager.default.fileExists(atPath: directory.sub("documents.key")), "the key file this run made is gone")
        }
    }
}

/// Alice's and Bob's homes on one relay, each unlocked by a key file beside it, and `parley` run in either.
private struct TwoHomes {
    let parley: String
    let directory: TemporaryDirectory
    let alice: String, bob: String
    let aliceHome: String, bobHome: String

    init(relay: RelayProcess, directory: TemporaryDirectory) throws {
        parley = try Binaries.path("parley")
        self.directory = directory
        alice = "alice@\(relay.name)"
        bob = "bob@\(relay.name)"
        aliceHome = directory.sub("alice")
        bobHome = directory.sub("bob")
    }

    func run(_ arguments: [String], home: String, standardInput: String? = nil) async throws -> ProcessResult {
        try await ParleyRelayTests.run(parley, arguments + ["--home", home, "--key-file", home + ".key"], in: directory, standardInput: standardInput)
    }
}

