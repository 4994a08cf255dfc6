import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

struct DriverOptions {
    var cycles = 200
    var messages = 2000
    var dir: String?
    var seed: UInt64?
    var keep = false
}

/// What one receiver run wrote to its progress file.
struct CycleLog {
    var started = false
    var verified = false
    var ready = false
    var recoveredFromInbox = 0
    var replays = 0
    var acks = 0
    var lastTag = ""
    var errors: [String] = []
    var cleanExit = false

    init(_ path: String) {
        for line in completeLines(path) {
            let fields = line.split(separator: " ")
            guard let tag = fields.first.map(String.init) else { continue }
            switch tag {
            case "S": started = true
            case "V": verified = true
            case "R":
                ready = true
                recoveredFromInbox += fields.count > 1 ? Int(fields[1]) ?? 0 : 0
            case "P": replays += 1
            case "A": acks += 1
            case "Q": cleanExit = true
            case "X": errors.append(String(line.dropFirst(2)))
            default: break
            }
            lastTag = tag
        }
    }

    /// Where the process was when it died, from its last progress line.
    var phase: String {
        switch lastTag {
        case "", "S": "opening and verifying the store"
        case "V": "filing the leftover inbox"
        case "B": "receiving (decrypt + commit)"
        case "C", "P": "filing into messages"
        case "F": "acknowledging"
        default: "between envelopes or waiting"
        }
    }
    var midMessage: Bool { ["B", "C", "P", "F"].contains(lastTag) }
}

/// The state of Bob's store as the driver sees it between receiver runs.
struct StoreSnapshot {
    /// Message ids (hex) and texts of Bob's conversation with Alice, in store order.
    var messages: [(id: String, text: String)] = []
    /// Message ids (hex) decrypted and committed but not yet filed.
    var inbox: [String] = []
    /// The group conversation with Alice (GroupTraffic), in store order, and the group's epoch.
    var groupMessages: [(id: String, text: String)] = []
    var groupEpoch: UInt64 = 0
    var rows = 0

    static func take(_ layout: Layout) throws -> StoreSnapshot {
        let store = try Accounts.open(layout.bobStore, key: layout.bobKey)
        var snapshot = StoreSnapshot()
        snapshot.rows = try store.verify().total
        snapshot.messages = try store.messages(in: ConversationId(destination: Layout.aliceAddress), limit: Int.max).map { (hex($0.clientMessageId), $0.text) }
        snapshot.inbox = try store.inbox().map { hex(try Content(decoding: $0.message.content).messageId) }
        (snapshot.groupMessages, snapshot.groupEpoch) = try GroupTraffic.snapshot(store)
        return snapshot
    }
}

enum Driver {
    static func run(_ options: DriverOptions) async -> Int32 {
        let started = Clock.now()
        let seed = options.seed ?? UInt64(SystemWallClock().nowMilliseconds() % 1_000_000)
        var rng = SplitMix64(seed: seed)
        let dir = options.dir ?? NSTemporaryDirectory() + "parley-crash-\(getpid())"
        let layout = Layout(dir: dir)
        let cycles = options.cycles, total = options.messages
        say("crash harness: \(cycles) SIGKILL cycles, \(total) messages, seed \(seed), directory \(dir)")
        say("  (reproduce the kill schedule with --seed \(seed); correctness never depends on timing)")

        var sender: pid_t = 0
        var receiver: pid_t = 0
        func stopChildren() {
            if receiver > 0, Child.poll(receiver) == nil { _ = Child.kill9(receiver) }
            if sender > 0, Child.poll(sender) == nil { _ = Child.kill9(sender) }
        }

        // Counters for the summary.
        var kills = 0, killsMidMessage = 0, killsAfterAck = 0, startupVerifiesCompleted = 0
        var recoveredInbox = 0, replays = 0, ackedInCycles = 0, mostAckedInACycle = 0
        var phases: [String: Int] = [:]
        var opensAttempted = 0, verifiedOpens = 0, openFailures: [String] = []
        var unexpected: [String] = []
        var lostSeen = Set<String>()

        do {
            if FileManager.default.fileExists(atPath: dir),
               !((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).isEmpty {
                throw HarnessError("\(dir) exists and is not empty")
            }
            for sub in [dir, layout.mailbox, layout.mailboxTemp, layout.progressDir] {
                try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            }
            try Accounts.create(layout)

            // The sender stays a little ahead of the cycles and is held back from its last messages until
            // all kill cycles are done, so messages stream in during every cycle.
            let lead = max(2, 2 * total / max(cycles, 1))
            func allowance(afterCycle c: Int) -> Int { min(total - 1, lead + c * (total - lead) / (cycles + 1)) }
            try Files.writeAtomically(Array("\(allowance(afterCycle: 0))\n".utf8), to: layout.allowance, tempDir: layout.dir)
            sender = try Child.spawn(["send", "--dir", dir, "--messages", "\(total)"])

            var startupEstimate = 0.3 // seconds from spawn to "ready"; refined as cycles run
            for cycle in 1...cycles {
                try Files.writeAtomically(Array("\(allowance(afterCycle: cycle))\n".utf8), to: layout.allowance, tempDir: layout.dir)
                let progressPath = layout.progress(cycle: cycle)
                let spawned = Clock.now()
                receiver = try Child.spawn(["receive", "--dir", dir, "--progress", progressPath])

                // Choose the kill moment: a quarter of the kills fall anywhere in start-up (exec, open, WAL
                // recovery, verify, leftover filing); the rest after the receiver is ready, mostly within
                // the first few messages, sometimes after many.
                var status: Child.Status?
                if rng.below(4) == 0 {
                    let delay = Double(rng.below(UInt64(startupEstimate * 1.2 * 1000) + 1))
                    Clock.sleep(milliseconds: delay)
                } else {
                    let deadline = spawned + 60
                    while Clock.now() < deadline {
                        if CycleLog(progressPath).ready { break }
                        if let ended = Child.poll(receiver) { status = ended; break }
                        Clock.sleep(milliseconds: 1)
                    }
                    startupEstimate = 0.8 * startupEstimate + 0.2 * (Clock.now() - spawned)
                    let window: UInt64 = switch rng.below(10) { case 0..<4: 20; case 4..<8: 120; default: 600 }
                    Clock.sleep(milliseconds: Double(rng.below(window + 1)))
                }
                if status == nil { status = Child.poll(receiver) }
                if status == nil {
                    status = Child.kill9(receiver)
                    kills += 1
                }
                receiver = 0
                let log = CycleLog(progressPath)
                if status != .signaled(SIGKILL) {
                    unexpected.append("cycle \(cycle): receiver ended by itself with \(status!)" + (log.errors.isEmpty ? "" : ": \(log.errors.joined(separator: "; "))"))
                } else {
                    phases[log.phase, default: 0] += 1
                    if log.midMessage { killsMidMessage += 1 }
                    if log.acks > 0 { killsAfterAck += 1 }
                }
                if log.verified { startupVerifiesCompleted += 1 }
                ackedInCycles += log.acks
                mostAckedInACycle = max(mostAckedInACycle, log.acks)
                recoveredInbox += log.recoveredFromInbox
                replays += log.replays
                if let ended = Child.poll(sender) {
                    sender = 0
                    throw HarnessError("the sender ended during cycle \(cycle) with \(ended)")
                }

                // Before the restart: the store must open and verify, and every acknowledged message (its
                // mailbox file is gone) must be in the store, filed or still in the inbox.
                let manifest = try readManifest(layout) // before listing the mailbox: a listed entry's file was written
                let inMailbox = Set(Files.mailbox(layout))
                opensAttempted += 1
                do {
                    let snapshot = try StoreSnapshot.take(layout)
                    verifiedOpens += 1
                    let stored = Set(snapshot.messages.map(\.id)).union(snapshot.inbox).union(snapshot.groupMessages.map(\.id))
                    // A group commit acknowledged moved Bob's group on: epoch 1 (Alice added him) plus one a commit.
                    let ackedCommits = manifest.filter { $0.isCommit && !inMailbox.contains($0.seq) }.count
                    if snapshot.groupEpoch < 1 + UInt64(ackedCommits), lostSeen.insert("commits after cycle \(cycle)").inserted {
                        say("  LOST: \(ackedCommits) group commits were acknowledged but Bob's group is at epoch \(snapshot.groupEpoch); found after cycle \(cycle)")
                    }
                    for entry in manifest where !entry.isCommit && !inMailbox.contains(entry.seq) && !stored.contains(entry.messageId) {
                        if lostSeen.insert(entry.messageId).inserted {
                            say("  LOST: message \(entry.seq) was acknowledged (its mailbox file is gone) but is neither in Bob's messages nor in his inbox; found after cycle \(cycle), whose kill came while \(log.phase)")
                        }
                    }
                } catch {
                    openFailures.append("cycle \(cycle): \(error)")
                    say("  OPEN/VERIFY FAILED after cycle \(cycle): \(error)")
                }
                if cycle % 25 == 0 || cycle == cycles {
                    let acked = manifest.filter { !inMailbox.contains($0.seq) }.count
                    say(String(format: "  cycle %d/%d: %d sent, %d acknowledged, %d kills mid-message, %.1f s",
                                 cycle, cycles, manifest.count, acked, killsMidMessage, Clock.now() - started))
                }
            }

            // Let the sender finish, then one receiver runs to completion.
            try Files.writeAtomically(Array("\(total)\n".utf8), to: layout.allowance, tempDir: layout.dir)
            guard let senderStatus = Child.wait(sender, seconds: 300) else { throw HarnessError("the sender did not finish") }
            sender = 0
            guard senderStatus == .exited(0) else { throw HarnessError("the sender failed with \(senderStatus)") }
            let finalProgress = layout.progress(cycle: cycles + 1)
            receiver = try Child.spawn(["receive", "--dir", dir, "--progress", finalProgress])
            guard let finalStatus = Child.wait(receiver, seconds: 300) else { throw HarnessError("the last receiver did not finish") }
            receiver = 0
            let finalLog = CycleLog(finalProgress)
            recoveredInbox += finalLog.recoveredFromInbox
            replays += finalLog.replays
            if finalStatus != .exited(0) || !finalLog.cleanExit {
                unexpected.append("last receiver: \(finalStatus)" + (finalLog.errors.isEmpty ? "" : ": \(finalLog.errors.joined(separator: "; "))"))
            }
        } catch {
            stopChildren()
            say("crash harness: aborted: \(error)")
            say("0 passed, 1 failed")
            say("(files kept in \(dir))")
            return 1
        }

        // Final account: every sent message exactly once, with its text, in sending order.
        var lost = 0, duplicated = 0, foreign = 0, wrongText = 0, outOfOrder = 0, stuckInInbox = 0, stuckInMailbox = 0
        var groupTexts = 0, groupCommits = 0
        var rows = 0
        opensAttempted += 1
        do {
            let manifest = try readManifest(layout)
            let snapshot = try StoreSnapshot.take(layout)
            verifiedOpens += 1
            rows = snapshot.rows
            let sent = Dictionary(uniqueKeysWithValues: manifest.filter { !$0.isCommit }.map { ($0.messageId, $0) })
            var count: [String: Int] = [:]
            // Each conversation in sending order: the 1:1 one and the group's.
            for conversation in [snapshot.messages, snapshot.groupMessages] {
                var lastSeq = 0
                for (id, text) in conversation {
                    count[id, default: 0] += 1
                    guard let entry = sent[id] else { foreign += 1; continue }
                    if entry.text != text { wrongText += 1 }
                    if count[id] == 1 {
                        if entry.seq < lastSeq { outOfOrder += 1 }
                        lastSeq = entry.seq
                    }
                }
            }
            duplicated = count.values.reduce(0) { $0 + max(0, $1 - 1) }
            lost = manifest.filter { !$0.isCommit && count[$0.messageId] == nil }.count
            let commits = manifest.filter(\.isCommit).count
            if snapshot.groupEpoch != 1 + UInt64(commits) {
                unexpected.append("Bob's group is at epoch \(snapshot.groupEpoch) after \(commits) commits (expected \(1 + commits))")
            }
            groupTexts = snapshot.groupMessages.count
            groupCommits = commits
            stuckInInbox = snapshot.inbox.count
            stuckInMailbox = Files.mailbox(layout).count
            if manifest.count != total { unexpected.append("the manifest has \(manifest.count) of \(total) messages") }
        } catch {
            openFailures.append("final: \(error)")
        }
        let errorLog = completeLines(layout.errors).map(String.init)
        let opens = opensAttempted
        let seconds = Clock.now() - started

        say("  kill moments: " + phases.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
        say("  \(killsMidMessage) kills landed mid-message (between taking an envelope and acknowledging it), \(killsAfterAck) after the cycle had acknowledged at least one")
        say("  acknowledged per killed receiver: \(ackedInCycles / max(kills, 1)) on average, at most \(mostAckedInACycle)")
        say("  after restarts: \(recoveredInbox) messages filed from a leftover inbox, \(replays) redelivered envelopes refused as replays and acknowledged")
        say("  group mail: \(groupTexts) texts filed in the group and \(groupCommits) commits applied, among the \(total) entries")
        say("  receiver start-up verifies completed: \(startupVerifiesCompleted) of \(cycles) (the others were killed first); final store: \(rows) rows verified")
        for failure in openFailures { say("  open/verify failure: \(failure)") }
        for problem in unexpected { say("  unexpected: \(problem)") }
        for line in errorLog { say("  receiver error: \(line)") }
        if wrongText > 0 || foreign > 0 || outOfOrder > 0 {
            say("  \(wrongText) with wrong text, \(foreign) not sent by the sender, \(outOfOrder) out of order")
        }
        if stuckInInbox > 0 || stuckInMailbox > 0 { say("  left over: \(stuckInInbox) in Bob's inbox, \(stuckInMailbox) in the mailbox") }
        lost = max(lost, lostSeen.count)
        say(String(format: "crash harness: %d cycles, %d messages, %d lost, %d duplicated, %d/%d verified opens (%.1f s)",
                     kills, total, lost, duplicated, verifiedOpens, opens, seconds))
        let passed = kills >= cycles && lost == 0 && duplicated == 0 && foreign == 0 && wrongText == 0 && outOfOrder == 0
            && stuckInInbox == 0 && stuckInMailbox == 0 && openFailures.isEmpty && unexpected.isEmpty && errorLog.isEmpty
            && verifiedOpens == opens
        say(passed ? "1 passed, 0 failed" : "0 passed, 1 failed")
        if passed && !options.keep {
            try? FileManager.default.removeItem(atPath: dir)
        } else {
            say("(files kept in \(dir))")
        }
        return passed ? 0 : 1
    }
}
