import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One long-running parley process per home: the chat window, the daemon and `parley receive` each hold
/// an exclusive `flock` on `HOME/lock` for as long as they run. Two of them on one home would each open a
/// push connection, which the relay keeps one of per device, so they displaced each other (both flapping
/// between online and offline) and drained the mailbox into the store behind each other's backs. The
/// kernel releases the lock when the process ends however it ends, so a stale lock cannot exist; the file
/// names the holder (pid and kind) only so the refusal can say who it is.
public enum HomeLock {
    /// The descriptor held for the process lifetime (never closed: closing it would release the lock).
    nonisolated(unsafe) private static var held: Int32 = -1

    /// Takes the lock on `home` for `kind` ("chat window", "daemon", "parley receive") or throws
    /// `ClientError.homeInUse` naming the process that holds it. Taking it again in the same process is a no-op.
    public static func acquire(_ home: ParleyHome, kind: String) throws(ClientError) {
        guard held < 0 else { return }
        let path = home.path + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ClientError.file("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let failure = errno
            let holder = readHolder(fd)
            close(fd)
            guard failure == EWOULDBLOCK else { throw ClientError.file("cannot lock \(path): \(String(cString: strerror(failure)))") }
            throw ClientError.homeInUse(holder)
        }
        let line = Array("\(getpid()) \(kind)\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        held = fd
    }

    /// "chat window, pid 1234" from the holder's line, or nil while it has not written it yet.
    private static func readHolder(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        let line = String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").first ?? ""
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, let pid = Int32(parts[0]) else { return nil }
        // Our own file, but shown on a terminal: only the kinds this file writes pass.
        let kind = String(parts[1])
        guard ["chat window", "daemon", "parley receive"].contains(kind) else { return "pid \(pid)" }
        return "\(kind), pid \(pid)"
    }
}
