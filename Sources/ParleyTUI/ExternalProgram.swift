import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Programs the window starts for the desktop (the opener, notify-send). Each is found on PATH and started
/// with an argument vector by posix_spawn — never through a shell, so a link, a file name or a message
/// text is one argument and nothing in it is ever parsed as a command. Its stdin, stdout and stderr are
/// /dev/null (the window owns the terminal), and it runs in a process group of its own, so C-c in the
/// window does not reach it.
public enum ExternalProgram {
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The executable `name` means: itself when it holds a slash, else the first executable file of that
    /// name in a directory of `path` (PATH's syntax; an empty entry is not the current directory here).
    public static func locate(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        guard !name.isEmpty else { return nil }
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where directory.hasPrefix("/") {
            let candidate = directory + "/" + name
            var info = stat()
            if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts `argv` (its first element an executable's path, as `locate` gives) and returns its pid; the
    /// caller waits for it (`wait`) or leaves that to `launch`.
    public static func start(_ argv: [String]) throws(Failure) -> pid_t {
        guard let program = argv.first else { throw Failure(description: "nothing to start") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        // The window blocks or catches signals for itself; the program starts with the defaults.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for pointer in arguments { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, program, &actions, &attributes, arguments, environ)
        guard code == 0 else { throw Failure(description: "cannot start \(program): \(String(cString: strerror(code)))") }
        return pid
    }

    /// The exit status of `pid` once it ends (-1 when it was killed by a signal or cannot be waited for).
    @discardableResult
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
    }

    /// Starts `argv` and reaps it in the background when it ends (no zombie is left behind).
    public static func launch(_ argv: [String]) throws(Failure) {
        let pid = try start(argv)
        Thread.detachNewThread { wait(pid) }
    }
}
