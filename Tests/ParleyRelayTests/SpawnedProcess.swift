import Foundation
import Glibc

/// Foundation's `Process`, as far as these tests use it, on `posix_spawn` and `waitpid`. It shadows
/// Foundation's type in this module on purpose: on Linux, Foundation's `run()` copies each 256-byte
/// `d_name` while it lists /proc/self/fd, which over-reads glibc's directory buffer when a record ends a
/// page (swift-corelibs-foundation PR #5472, not in the Swift 6.3.1 here). With about 1,360 descriptors
/// open, this test process died of it: SIGSEGV in memcpy under `Process.run()`.
///
/// The child gets standard input, output and error as set (a `FileHandle`, a `Pipe`, or nil to share this
/// process's), and no other descriptor of this process. This class reaps its child itself, so no other
/// thread's wait can take the exit status from it.
final class Process: @unchecked Sendable {
    var executableURL: URL?
    var arguments: [String]?
    var environment: [String: String]?
    var standardInput: Any?
    var standardOutput: Any?
    var standardError: Any?

    private let lock = NSLock()
    private var pid: pid_t = 0
    /// The wait status, once the child is reaped.
    private var waitStatus: Int32?

    var processIdentifier: Int32 { lock.withLock { pid } }

    func run() throws {
        guard let path = executableURL?.path else { throw CocoaError(.fileNoSuchFile) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // The ends of pipes that belong to the child: closed here once it has its copies, so a reader of
        // the other end sees the end of the file when the child exits.
        var childEnds: [FileHandle] = []
        func wire(_ stream: Any?, to target: Int32, childReads: Bool) {
            let handle: FileHandle
            switch stream {
            case let file as FileHandle: handle = file
            case let pipe as Pipe:
                handle = childReads ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                childEnds.append(handle)
            default: return
            }
            posix_spawn_file_actions_adddup2(&actions, handle.fileDescriptor, target)
        }
        wire(standardInput, to: 0, childReads: true)
        wire(standardOutput, to: 1, childReads: false)
        wire(standardError, to: 2, childReads: false)
        Self.closeTheRest(&actions)

        let argv = ([path] + (arguments ?? [])).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var child: pid_t = 0
        let code = envp.map { envp in posix_spawn(&child, path, &actions, nil, argv, envp) }
            ?? posix_spawn(&child, path, &actions, nil, argv, environ)
        guard code == 0 else {
            throw NSError(domain: NSPOSIXErrorDomain, code: Int(code),
                          userInfo: [NSLocalizedDescriptionKey: "cannot run \(path): \(String(cString: strerror(code)))"])
        }
        lock.withLock { pid = child }
        for end in childEnds { try? end.close() }
    }

    var isRunning: Bool { lock.withLock { reap() == nil } }

    /// The exit code, or the number of the signal that ended the child (as Foundation's).
    var terminationStatus: Int32 {
        let status = lock.withLock { reap() } ?? 0
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    func waitUntilExit() {
        while true {
            let child: pid_t = lock.withLock { waitStatus == nil ? pid : 0 }
            guard child > 0 else { return }
            var status: Int32 = 0
            // Without the lock, so `isRunning` and `terminate` stay answerable meanwhile.
            let answer = waitpid(child, &status, 0)
            if answer == child { lock.withLock { waitStatus = status }; return }
            if errno == ECHILD { usleep(1_000) }  // another waiter reaped it and is about to say so
        }
    }

    func terminate() {
        let child = lock.withLock { waitStatus == nil ? pid : 0 }
        if child > 0 { Glibc.kill(child, SIGTERM) }
    }

    /// Waits for a child that was sent SIGKILL (or will exit by itself), at most about `seconds` before
    /// waiting without a bound.
    func waitForExitReaping(seconds: Double = 10) {
        let deadline = Date().addingTimeInterval(seconds)
        while isRunning, Date() < deadline { usleep(10_000) }
        waitUntilExit()
    }

    /// The wait status, reaping the child if it has exited; nil while it runs (or while another waiter has
    /// reaped it and not yet said so). Called with `lock` held.
    private func reap() -> Int32? {
        if let waitStatus { return waitStatus }
        guard pid > 0 else { return nil }
        var status: Int32 = 0
        while true {
            let answer = waitpid(pid, &status, WNOHANG)
            if answer == pid { waitStatus = status; return status }
            if answer == -1, errno == EINTR { continue }
            return nil
        }
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), which Swift does not see here.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    /// Every descriptor above 2 closed in the child.
    private static func closeTheRest(_ actions: inout posix_spawn_file_actions_t) {
        if let closeFrom, closeFrom(&actions, 3) == 0 { return }
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in open where fd > 2 && fcntl(fd, F_GETFD) != -1 { posix_spawn_file_actions_addclose(&actions, fd) }
    }
}
