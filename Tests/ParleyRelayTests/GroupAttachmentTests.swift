import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// A file in a group (PROTOCOL.md §17.7) on a parley-relay process: uploaded once, its key in the group
/// message, downloaded by every member's devices.
@Suite("End to end: attachments in groups")
struct GroupAttachmentTests {
    @Test("one encrypted blob on the relay; every member device downloads the same file, checked")
    func attachmentInAGroup() async throws {
        try await withRelay { relay, directory in
            let world = try await GroupWorld.make(on: relay, in: directory)
            let (alice, bob, bob2, carol) = (world.alice, world.bob, world.bob2, world.carol)
            let a = await alice.address, b = await bob.address, c = await carol.address
            let ops = Operations(engine: alice.engine, policy: Policy())
            let id = try ops.groupId(try await ops.createGroup(name: "Maps", members: [b, c]).id)
            for device in [bob, bob2, carol] { try await device.engine.receivePending() }

            // Three chunks of the secretstream, so the file is more than one piece.
            let file = directory.sub("route.gpx"), original = SystemRandom().bytes(150_000)
            FileManager.default.createFile(atPath: file, contents: Data(original))
            let sent = try await ops.sendToGroup(id, text: "tomorrow's route", attachment: file)
            #expect(sent.state == "sent")
            let messageId = try #require(Hex.decode(sent.id))
            let pointer = try #require(try alice.store.message(sentBy: a, clientMessageId: messageId)?.attachment)

            for (n, device) in [bob, bob2, carol].enumerated() {
                try await device.engine.receivePending()
                let copy = try #require(try device.store.messages(in: .group(id), limit: 100).last)
                #expect(copy.text == "tomorrow's route" && copy.attachment == pointer, "the same pointer on every device")
                let saved = directory.sub("saved-\(n)")
                let result = try await Operations(engine: device.engine).saveAttachment(from: a, id: messageId, to: saved)
                #expect(result.filename == "route.gpx" && result.size == UInt64(original.count))
                #expect(FileManager.default.contents(atPath: saved).map { [UInt8]($0) } == original)
            }

            // The relay holds one blob (and one slot row) for the whole group, of the padded size.
            let blobs = try FileManager.default.contentsOfDirectory(atPath: relay.dataDirectory + "/attachments")
            #expect(blobs == [pointer.id], "\(blobs)")
            let size = try #require(FileManager.default.attributesOfItem(atPath: relay.dataDirectory + "/attachments/" + pointer.id)[.size] as? Int)
            #expect(size == AttachmentCipher.paddedSize(of: original.count))
            let rows = try await run("/usr/bin/sqlite3", ["-readonly", relay.dataDirectory + "/relay.sqlite", "SELECT count(*) FROM attachments"],
                                     in: directory)
            #expect(rows.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(rows.summary)")
        }
    }
}
