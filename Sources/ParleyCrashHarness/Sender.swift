import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// Alice's device: sends `total` text messages to Bob, no faster than the driver's allowance, and puts
/// each envelope into the mailbox atomically (temp file, fsync, rename) before recording it in the
/// manifest and removing it from her outbox — the relay has "accepted" it.
enum Sender {
    static func run(_ layout: Layout, total: Int) async -> Int32 {
        let watch = ParentWatch()
        do {
            let store = try Accounts.open(layout.aliceStore, key: layout.aliceKey)
            guard let account = try store.localAccount() else { throw HarnessError("Alice's store has no account") }
            let manager = SessionManager(account: account, store: store, bundles: FileBundleSource(path: layout.bobBundle))
            let manifest = try AppendLog(layout.manifest)
            let bob = DeviceAddress(address: Layout.bobAddress, deviceId: 1)
            let random = SystemRandom()
            for seq in 1...total {
                while (Files.readInt(layout.allowance) ?? 0) < seq {
                    guard watch.parentAlive else { return 2 }
                    Clock.sleep(milliseconds: 2)
                }
                let messageId = Content.newMessageId(random: random)
                let text = "message \(seq) of \(total) \u{2713} \(hex(random.bytes(4)))"
                if GroupTraffic.isGroupEntry(seq) {
                    let entry = try GroupTraffic.send(seq, messageId: messageId, text: text, from: store)
                    try Files.writeAtomically(entry, to: layout.mailbox + "/" + Layout.envelopeName(seq), tempDir: layout.mailboxTemp)
                    manifest.line(GroupTraffic.isCommit(seq) ? "\(seq)\t\(GroupTraffic.commitMark)\t-" : "\(seq)\t\(hex(messageId))\t\(text)")
                    continue
                }
                let content = Content(messageId: messageId, sentAt: SystemWallClock().nowMilliseconds(),
                                      destination: Layout.bobAddress, body: .text(text))
                let envelopes = try await manager.send(content, to: try AccountAddress(Layout.bobAddress))
                guard envelopes.count == 1, envelopes[0].recipient == bob else {
                    throw HarnessError("expected one envelope for \(bob), got \(envelopes.map(\.recipient))")
                }
                try Files.writeAtomically(envelopes[0].envelope, to: layout.mailbox + "/" + Layout.envelopeName(seq),
                                          tempDir: layout.mailboxTemp)
                manifest.line("\(seq)\t\(hex(messageId))\t\(text)")
                try store.removeFromOutbox(try store.outbox().map(\.id))
            }
            try Files.writeAtomically(Array("\(total)\n".utf8), to: layout.senderDone, tempDir: layout.dir)
            return 0
        } catch {
            FileHandle.standardError.write(Data("crash harness sender: \(error)\n".utf8))
            return 1
        }
    }
}
