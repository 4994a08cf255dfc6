import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A directory that holds what only this user may see or reach (an account's home, the daemon's socket):
/// a real directory (checked with `lstat`, so never a symbolic link), owned by this user, and closed to
/// everyone else. A directory another local user made first, or left open, is refused — that user could
/// swap the socket or read the store — with words that say what to do.
public enum PrivateDirectory {
    /// Why `path` is not private ("it is a symbolic link, …"), or nil when it is (and exists).
    public static func problem(_ path: String) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "it cannot be examined: \(String(cString: strerror(errno)))" }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: break
        case S_IFLNK: return "it is a symbolic link, not a directory"
        default: return "it is not a directory"
        }
        if info.st_uid != getuid() { return "it belongs to another user (uid \(info.st_uid))" }
        let mode = info.st_mode & 0o777
        if mode != 0o700 { return "its mode is \(String(mode, radix: 8)), not 700" }
        return nil
    }

    /// Creates `path` (one level: its parent must exist) with mode 0700, or checks the one already there.
    /// Throws a description of what is wrong and what to do.
    public static func make(_ path: String, remedy: String) throws(ClientError) {
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw .file("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        if let problem = problem(path) { throw .file("refusing the directory \(path): \(problem); \(remedy)") }
    }

    /// A home directory that may already exist. One of the user's that others can read (`mkdir` gives
    /// 0755) is closed to 0700 — the store is 0600 in any case, but the home also holds attachments and
    /// shows file names. One that is not the user's, or that anyone may write to (/tmp), is refused.
    public static func makeHome(_ path: String) throws(ClientError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .file("cannot create the home directory \(path): \(error.localizedDescription)")
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw .file("the home directory \(path) is not a directory") }
        guard info.st_uid == getuid() else {
            throw .file("the home directory \(path) belongs to another user (uid \(info.st_uid)); choose a directory of your own with --home")
        }
        guard info.st_mode & 0o077 != 0 else { return }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        guard info.st_mode & 0o1002 == 0 else {
            throw .file("the home directory \(path) is shared (mode \(mode): others can write to it); choose a directory of your own with --home")
        }
        guard chmod(path, 0o700) == 0 else {
            throw .file("the home directory \(path) can be read by other users (mode \(mode)) and cannot be closed: " +
                        "\(String(cString: strerror(errno))); run `chmod 700 \(path)`")
        }
    }
}
