import Foundation
import ParleyCrypto
#if canImport(Glibc)
import Glibc
#endif

/// A harness failure that ends the run (set-up problems, a child that cannot be started).
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// SplitMix64: small, seedable, good enough to choose kill moments reproducibly.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<bound.
    mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }
    /// Uniform in range (inclusive).
    mutating func inRange(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(below(UInt64(range.upperBound - range.lowerBound + 1)))
    }
}

enum Clock {
    /// Monotonic time in seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func sleep(milliseconds: Double) {
        guard milliseconds > 0 else { return }
        var ts = timespec(tv_sec: Int(milliseconds / 1000), tv_nsec: Int((milliseconds.truncatingRemainder(dividingBy: 1000)) * 1_000_000))
        var rest = timespec()
        while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
    }
}

/// The files of one harness run, all under one directory.
struct Layout {
    let dir: String
    var aliceStore: String { dir + "/alice.db" }
    var aliceKey: String { dir + "/alice.key" }
    var bobStore: String { dir + "/bob.db" }
    var bobKey: String { dir + "/bob.key" }
    /// Bob's prekey bundle, as the relay's prekey directory would hand it to Alice.
    var bobBundle: String { dir + "/bob.bundle" }
    /// The fake relay: one file per envelope, named by sequence number, deleted when Bob acknowledges it.
    var mailbox: String { dir + "/mailbox" }
    /// Where the sender writes an envelope before renaming it into the mailbox (same file system).
    var mailboxTemp: String { dir + "/mailbox.tmp" }
    /// What the sender sent, one line per message: `seq \t message id (hex) \t text`.
    var manifest: String { dir + "/manifest.txt" }
    /// How many messages the sender may have sent so far (the driver raises it cycle by cycle).
    var allowance: String { dir + "/allowance" }
    /// Exists once the sender has sent everything.
    var senderDone: String { dir + "/sender.done" }
    /// Unexpected receiver errors, one line each.
    var errors: String { dir + "/errors.log" }
    var progressDir: String { dir + "/progress" }
    func progress(cycle: Int) -> String { progressDir + "/" + String(format: "%04d.log", cycle) }

    static let aliceAddress = "alice@crash.test"
    static let bobAddress = "bob@crash.test"

    /// A mailbox entry's file: `.env` for a 1:1 envelope, `.grp` for a group message (GroupTraffic).
    static func envelopeName(_ seq: Int) -> String {
        String(format: GroupTraffic.isGroupEntry(seq) ? "%08d.grp" : "%08d.env", seq)
    }
    static func sequence(ofEnvelope name: String) -> Int? {
        guard name.hasSuffix(".env") || name.hasSuffix(".grp") else { return nil }
        return Int(name.dropLast(4))
    }
}

enum Files {
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HarnessError("cannot read \(path)") }
        return [UInt8](data)
    }

    /// Writes `bytes` so that `path` either does not exist or holds all of them: temp file, fsync, rename,
    /// fsync of the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String, tempDir: String) throws {
        let temp = tempDir + "/" + (path as NSString).lastPathComponent + ".\(getpid()).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            guard n > 0 else { close(fd); throw HarnessError("cannot write \(temp): \(String(cString: strerror(errno)))") }
            written += n
        }
        guard fsync(fd) == 0, close(fd) == 0 else { throw HarnessError("cannot sync \(temp)") }
        guard rename(temp, path) == 0 else { throw HarnessError("cannot rename \(temp) to \(path): \(String(cString: strerror(errno)))") }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw HarnessError("cannot open directory \(dir)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw HarnessError("cannot sync directory \(dir)") }
    }

    /// Sequence numbers of the envelopes in the mailbox, in order.
    static func mailbox(_ layout: Layout) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.mailbox)) ?? []
        return names.compactMap(Layout.sequence(ofEnvelope:)).sorted()
    }

    static func readInt(_ path: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// An append-only text log written with write(2), so every line survives SIGKILL of the writer (it is in
/// the page cache as soon as write returns).
final class AppendLog {
    private let fd: Int32
    init(_ path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HarnessError("cannot open \(path): \(String(cString: strerror(errno)))") }
    }
    deinit { close(fd) }
    func line(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }
}

/// Complete lines of a text file (a partly written last line is ignored).
func completeLines(_ path: String) -> [Substring] {
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return [] }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    lines.removeLast() // empty after a final newline, or an incomplete line
    return lines
}

func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

/// One sent message as the manifest records it (a group commit: `GroupTraffic.commitMark` for its id).
struct ManifestEntry {
    let seq: Int
    let messageId: String
    let text: String
    var isCommit: Bool { messageId == GroupTraffic.commitMark }
}

func readManifest(_ layout: Layout) throws -> [ManifestEntry] {
    try completeLines(layout.manifest).map { line in
        let parts = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let seq = Int(parts[0]) else { throw HarnessError("bad manifest line: \(line)") }
        return ManifestEntry(seq: seq, messageId: String(parts[1]), text: String(parts[2]))
    }
}

// MARK: Child processes

enum Child {
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts this executable with `arguments`; stdin is /dev/null, stdout and stderr are inherited.
    static func spawn(_ arguments: [String]) throws -> pid_t {
        let path = executablePath()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw HarnessError("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    enum Status: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "signal \(signal)"
            }
        }
    }

    private static func decode(_ status: Int32) -> Status {
        status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }

    /// Reaps `pid` if it has ended; nil while it runs.
    static func poll(_ pid: pid_t) -> Status? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        return r == pid ? decode(status) : nil
    }

    static func wait(_ pid: pid_t) -> Status {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return decode(status)
    }

    /// Waits up to `seconds`; nil if the child still runs.
    static func wait(_ pid: pid_t, seconds: Double) -> Status? {
        let deadline = Clock.now() + seconds
        while Clock.now() < deadline {
            if let status = poll(pid) { return status }
            Clock.sleep(milliseconds: 5)
        }
        return poll(pid)
    }

    static func kill9(_ pid: pid_t) -> Status {
        kill(pid, SIGKILL)
        return wait(pid)
    }
}

/// Children exit when the driver is gone, so an interrupted run leaves nothing behind.
struct ParentWatch {
    private let parent = getppid()
    var parentAlive: Bool { getppid() == parent }
}

/// Prints a line at once (unbuffered), so a slow or interrupted run shows how far it got.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
