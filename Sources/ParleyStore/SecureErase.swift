import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Removing a file Parley wrote with secrets in it (a decrypted attachment of a message that disappeared):
/// its bytes are overwritten with zeros and synced before the name is unlinked, so the blocks the file
/// system frees hold nothing of it. (A copy-on-write file system, or an SSD's wear levelling, may still
/// keep earlier blocks; Parley cannot reach those.)
public enum SecureErase {
    /// Overwrites and unlinks the regular file at `path`; a symbolic link is unlinked, never followed.
    /// Returns whether a file was removed.
    @discardableResult
    public static func file(at path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        if info.st_mode & S_IFMT == S_IFREG {
            let fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd >= 0 {
                let zeros = [UInt8](repeating: 0, count: 64 * 1024)
                var left = Int(info.st_size)
                while left > 0 {
                    let written = zeros.withUnsafeBytes { write(fd, $0.baseAddress, min(left, zeros.count)) }
                    if written <= 0 { break }
                    left -= written
                }
                _ = fsync(fd)
                close(fd)
            }
        }
        return unlink(path) == 0
    }

    /// Every regular file under `directory` erased as `file(at:)` does, then the directory removed.
    public static func directory(at directory: String) {
        let manager = FileManager.default
        if let enumerator = manager.enumerator(atPath: directory) {
            for case let relative as String in enumerator { file(at: directory + "/" + relative) }
        }
        try? manager.removeItem(atPath: directory)
    }
}
