import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Attachments and replies through a real relay process: the blob the relay holds is ciphertext, the
/// receiver gets the exact bytes, and a slot can be filled only by the device that made it.
@Suite("End to end: attachments and replies")
struct EndToEndAttachmentTests {
    @Test("an attachment with a caption, replying to a message, arrives byte-exact; the relay holds only ciphertext")
    func attachmentAndReply() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, a, b) = try await TestDevice.pair(on: relay, in: directory)

            let question = try await bob.engine.send(text: "can you send the report?", to: a)
            try await alice.engine.receivePending()
            // A recognisable plaintext over several secretstream chunks.
            let marker = Array("PARLEY-PLAINTEXT-MARKER".utf8)
            var plaintext: [UInt8] = []
            while plaintext.count < 3 * AttachmentCipher.chunkSize + 77 { plaintext += marker + SystemRandom().bytes(100) }
            let file = directory.sub("report.pdf")
            FileManager.default.createFile(atPath: file, contents: Data(plaintext))
            let sent = try await alice.engine.sendAttachment(file: file, to: b, caption: "here it is", replyTo: question.clientMessageId)
            #expect(sent.attachment?.fileName == "report.pdf" && sent.attachment?.contentType == "application/pdf")
            #expect(sent.state == .sent)

            try await bob.engine.receivePending()
            let arrived = try #require(try bob.history(with: a).last)
            #expect(arrived.text == "here it is")
            #expect(arrived.replyTo == question.clientMessageId)
            #expect(arrived.attachment == sent.attachment)
            let saved = directory.sub("saved.pdf")
            try await bob.engine.saveAttachment(of: arrived, to: saved)
            #expect(FileManager.default.contents(atPath: saved) == Data(plaintext))
            let mode = try FileManager.default.attributesOfItem(atPath: saved)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            // What the relay stores for it: ciphertext only.
            let blobPath = relay.dataDirectory + "/attachments/" + (sent.attachment?.id ?? "")
            let blob = try #require(FileManager.default.contents(atPath: blobPath))
            #expect(blob.count == AttachmentCipher.paddedSize(of: plaintext.count))
            #expect(AttachmentPadding.isBucket(blob.count) && blob.count > AttachmentCipher.sealedSize(of: plaintext.count))
            #expect(blob.range(of: Data(marker)) == nil)

            // A message without an attachment has none to save.
            await #expect(throws: ClientError.noAttachment) { try await bob.engine.saveAttachment(of: question, to: saved) }
        }
    }

    @Test("only the holder of a slot's upload secret can fill it; a blob changed on the relay is refused by the receiver")
    func slotOwnershipAndTampering() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let mallory = try await TestDevice.create("mallory", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            let a = await alice.address, b = await bob.address
            try await alice.engine.addContact(b)
            try await bob.engine.addContact(a)

            let raw = RawHTTP(relay)
            let slot = try await RelayClient(endpoint: try TestDevice.endpoint(for: relay))
                .createAttachment(size: 10, token: try await alice.token())
            let path = "/v1/attachments/" + slot.id, ten = [UInt8](repeating: 1, count: 10)
            // A device token (even the slot maker's) is no upload secret; a wrong secret finds no slot.
            #expect(try await raw.request(.PUT, path, body: ten, token: try await alice.token()).status == 401)
            let guessed = Hex.encode(SystemRandom().bytes(32))
            let intrusion = try await raw.request(.PUT, path, body: ten, token: try await mallory.token(),
                                                  headers: [(RelayAPI.uploadSecretHeader, guessed)])
            #expect(intrusion.status == 404)
            let owner = try await raw.request(.PUT, path, body: ten, headers: [(RelayAPI.uploadSecretHeader, slot.uploadSecret)])
            #expect(owner.status == 204)

            // Two uploads to one slot at once: one is stored whole, the other refused (409), never a mix, a
            // 500, or a success whose bytes were replaced by the other's.
            let size = 8 << 20
            let contested = try await RelayClient(endpoint: try TestDevice.endpoint(for: relay))
                .createAttachment(size: size, token: try await alice.token())
            let secret = [(RelayAPI.uploadSecretHeader, contested.uploadSecret)]
            async let first = raw.request(.PUT, "/v1/attachments/" + contested.id, body: Array(repeating: 0x41, count: size), headers: secret)
            async let second = raw.request(.PUT, "/v1/attachments/" + contested.id, body: Array(repeating: 0x42, count: size), headers: secret)
            let statuses = [try await first.status, try await second.status]
            #expect(statuses.sorted() == [204, 409], "\(statuses)")
            let stored = try await raw.request(.GET, "/v1/attachments/" + contested.id)
            #expect(stored.body == Array(repeating: statuses[0] == 204 ? 0x41 : 0x42, count: size), "the bytes of the upload that succeeded")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: relay.dataDirectory + "/attachments").filter { $0.hasSuffix(".part") }
            #expect(leftovers.isEmpty, "no partial files left: \(leftovers)")

            let file = directory.sub("note.txt")
            FileManager.default.createFile(atPath: file, contents: Data("attached text".utf8))
            let sent = try await alice.engine.sendAttachment(file: file, to: b)
            try await bob.engine.receivePending()
            let arrived = try #require(try bob.history(with: a).last)
            let blobPath = relay.dataDirectory + "/attachments/" + (arrived.attachment?.id ?? "")
            var blob = try #require(FileManager.default.contents(atPath: blobPath))
            blob[blob.count - 1] ^= 0x01
            FileManager.default.createFile(atPath: blobPath, contents: blob)
            let target = directory.sub("note-saved.txt")
            await #expect(throws: ProtocolError.self) { try await bob.engine.saveAttachment(of: arrived, to: target) }
            #expect(!FileManager.default.fileExists(atPath: target), "a refused attachment leaves no file")
            #expect(sent.attachment?.size == 13)
        }
    }

    @Test("saving never replaces a directory, nor a file unless asked, and a directory keeps the sender's name")
    func savingReplacesNothingUnasked() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, a, b) = try await TestDevice.pair(on: relay, in: directory)
            // A file whose name matches a directory the receiver has: the directory and what it holds stay.
            try FileManager.default.createDirectory(atPath: directory.sub("out/Documents/important"), withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: directory.sub("out/Documents/important/thesis.txt"), contents: Data("years of work".utf8))
            FileManager.default.createFile(atPath: directory.sub("Documents"), contents: Data("attached".utf8))
            _ = try await alice.engine.sendAttachment(file: directory.sub("Documents"), to: b)
            try await bob.engine.receivePending()
            let arrived = try #require(try bob.history(with: a).last)

            let intoDirectory = Engine.attachmentDestination(fileName: "Documents", requested: directory.sub("out/Documents"), fallback: "x")
            #expect(intoDirectory == directory.sub("out/Documents/Documents"), "a directory gets the file inside it")
            let thesis = directory.sub("out/Documents/important/thesis.txt")
            await #expect(throws: ClientError.self) { try await bob.engine.saveAttachment(of: arrived, to: directory.sub("out/Documents")) }
            await #expect(throws: ClientError.self) {
                try await bob.engine.saveAttachment(of: arrived, to: directory.sub("out/Documents"), replacing: true)
            }
            #expect(FileManager.default.contents(atPath: thesis) == Data("years of work".utf8))

            // An existing file stays unless replacing is asked for; no temporary file is left either way.
            let existing = directory.sub("out/notes.txt")
            FileManager.default.createFile(atPath: existing, contents: Data("mine".utf8))
            await #expect(throws: ClientError.self) { try await bob.engine.saveAttachment(of: arrived, to: existing) }
            #expect(FileManager.default.contents(atPath: existing) == Data("mine".utf8))
            try await bob.engine.saveAttachment(of: arrived, to: existing, replacing: true)
            #expect(FileManager.default.contents(atPath: existing) == Data("attached".utf8))
            try await bob.engine.saveAttachment(of: arrived, to: intoDirectory)
            #expect(FileManager.default.contents(atPath: intoDirectory) == Data("attached".utf8))
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.sub("out"))
            #expect(Set(left) == ["Documents", "notes.txt"], "no .part file left behind")
        }
    }

    @Test("a sender's file name is reduced to its last component, without control characters or leading dots")
    func senderFileNames() {
        #expect(Engine.attachmentDestination(fileName: "../../.ssh/authorized_keys", requested: nil, fallback: "f") == "authorized_keys")
        #expect(Engine.attachmentDestination(fileName: "a\u{1B}]0;pwned\u{07}b.txt", requested: nil, fallback: "f") == "a_]0;pwned_b.txt")
        #expect(Engine.attachmentDestination(fileName: "..", requested: nil, fallback: "f") == "f")
        #expect(Engine.attachmentDestination(fileName: ".bash_profile", requested: nil, fallback: "f") == "bash_profile", "no hidden files")
        #expect(Engine.attachmentDestination(fileName: "...", requested: nil, fallback: "f") == "f")
        #expect(Engine.attachmentDestination(fileName: "", requested: nil, fallback: "f") == "f")
        #expect(Engine.attachmentDestination(fileName: "x.txt", requested: "/nonexistent/y.txt", fallback: "f") == "/nonexistent/y.txt")
    }
}
