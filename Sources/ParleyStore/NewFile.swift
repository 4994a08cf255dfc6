#if canImport(Glibc)
import Glibc
#endif

/// A file that must not exist yet: created with O_EXCL (nothing is ever replaced, and a symbolic link at
/// the path is not followed), mode 0600 from the first byte, flushed to disk before it counts as written,
/// and removed again on any failure. Key files and saved attachments are made this way.
public enum NewFile {
    /// Writes `bytes` to a new file at `path`: nil when done, else the errno that stopped it.
    public static func create(at path: String, holding bytes: [UInt8]) -> Int32? {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return errno }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            written += n
        }
        let failure: Int32? = written < bytes.count ? (errno == 0 ? EIO : errno) : (fsync(fd) == 0 ? nil : errno)
        close(fd)
        if failure != nil { unlink(path) }
        return failure
    }
}
