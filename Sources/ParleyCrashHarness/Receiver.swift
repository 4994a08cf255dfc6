import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// Bob's device, the process the driver kills. It opens and verifies the store, files whatever a previous
/// run left in the inbox, then takes envelopes from the mailbox in order: receive (one commit: ratchet
/// state + inbox entry), file into messages (one commit), and only then acknowledge by deleting the
/// mailbox file. An envelope committed but not acknowledged before a crash comes again and is refused
/// by the ratchet as a replay; it is acknowledged then. Any other failure is recorded in errors.log and
/// ends the process with status 3 — never skipped.
///
/// Progress lines (one write(2) each, so they survive SIGKILL) tell the driver where the process was:
///   S pid          started
///   V              store opened and verified
///   R filed rep    leftover inbox filed (entries filed, repeats dropped)
///   B seq          about to receive envelope seq
///   C seq          receive committed
///   P seq          envelope refused as a replay (committed before a crash, not acknowledged)
///   F seq filed rep inbox filed
///   A seq          acknowledged (mailbox file deleted)
///   W              mailbox empty, waiting
///   Q              mailbox empty and the sender is done: clean exit
///   X what         unexpected error (also in errors.log)
enum Receiver {
    static func run(_ layout: Layout, progressPath: String) async -> Int32 {
        let watch = ParentWatch()
        guard let progress = try? AppendLog(progressPath), let errors = try? AppendLog(layout.errors) else { return 4 }
        func fail(_ what: String) -> Int32 {
            errors.line("receiver \(getpid()): \(what)")
            progress.line("X \(what)")
            return 3
        }
        progress.line("S \(getpid())")
        let store: EncryptedStore
        do {
            store = try Accounts.open(layout.bobStore, key: layout.bobKey)
            _ = try store.verify()
        } catch {
            return fail("open and verify at start-up: \(error)")
        }
        progress.line("V")
        do {
            guard let account = try store.localAccount() else { return fail("Bob's store has no account") }
            let manager = SessionManager(account: account, store: store, bundles: FileBundleSource(path: layout.bobBundle))
            let leftover = try Filing.fileInbox(store, ownAddress: account.address)
            progress.line("R \(leftover.filed) \(leftover.repeats)")
            var idle = false
            while true {
                guard watch.parentAlive else { return 2 }
                let senderDone = Files.exists(layout.senderDone) // before listing: nothing arrives after it
                let pending = Files.mailbox(layout)
                if pending.isEmpty {
                    if senderDone { progress.line("Q"); return 0 }
                    if !idle { progress.line("W"); idle = true }
                    Clock.sleep(milliseconds: 2)
                    continue
                }
                idle = false
                for seq in pending {
                    let path = layout.mailbox + "/" + Layout.envelopeName(seq)
                    progress.line("B \(seq)")
                    let envelope = try Files.read(path)
                    do {
                        if GroupTraffic.isGroupEntry(seq) {
                            switch try GroupTraffic.receive(envelope, into: store) {
                            case .committed: progress.line("C \(seq)")
                            case .replay: progress.line("P \(seq)")
                            }
                        } else {
                            try await manager.receive(envelope)
                            progress.line("C \(seq)")
                        }
                    } catch ProtocolError.duplicateOrReplayedMessage {
                        progress.line("P \(seq)")
                    } catch {
                        return fail("envelope \(seq): \(error)")
                    }
                    let filed = try Filing.fileInbox(store, ownAddress: account.address)
                    progress.line("F \(seq) \(filed.filed) \(filed.repeats)")
                    guard unlink(path) == 0 else { return fail("cannot acknowledge envelope \(seq): \(String(cString: strerror(errno)))") }
                    progress.line("A \(seq)")
                }
            }
        } catch {
            return fail("\(error)")
        }
    }
}
