import Foundation
import ParleyClient
#if canImport(Glibc)
import Glibc
#endif

public enum SocketError: Error, CustomStringConvertible, Sendable {
    case pathTooLong(String)
    case inUse(String)
    case notASocket(String)
    case system(String, Int32)

    public var description: String {
        switch self {
        case .pathTooLong(let path): "the socket path \(path) is too long for a Unix socket"
        case .inUse(let path): "another daemon is listening on \(path)"
        case .notASocket(let path): "\(path) exists and is not a socket; choose another --socket path"
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// A listening Unix stream socket, mode 0600 (only this user may connect). A stale socket file left by a
/// daemon that died is replaced; one another daemon still answers on is not.
public final class UnixSocketListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else { throw SocketError.pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            // Only a stale socket is replaced: a file of any other kind at the path is the user's.
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw SocketError.notASocket(path) }
            if Self.answers(address) { throw SocketError.inUse(path) }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.system("socket", errno) }
        // Created 0600 from the start: no moment in which another user could connect.
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previous)
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SocketError.system("bind \(path)", code)
        }
        chmod(path, 0o600)
        guard listen(fd, 64) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SocketError.system("listen", code)
        }
        self.fd = fd
    }

    private static func answers(_ address: sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { Glibc.close(probe) }
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    /// Accepted clients, until the listener is closed.
    public func connections() -> AsyncStream<LineConnection> {
        let (stream, continuation) = AsyncStream.makeStream(of: LineConnection.self)
        let thread = Thread { [fd] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    break
                }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                continuation.yield(LineConnection(readFD: client, writeFD: client, closeOnFinish: true))
            }
            continuation.finish()
        }
        thread.start()
        return stream
    }

    /// Removes the socket file first: closing the descriptor ends the accept loop, and the daemon's main
    /// task may then return and end the process before a later unlink ran.
    public func close() {
        unlink(path)
        _ = shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }

    /// `$XDG_RUNTIME_DIR/parley/<account>.sock`, else a per-user directory under /tmp. The directory is
    /// made with mode 0700 or, when it exists, must be a real directory of this user's with mode 0700:
    /// in /tmp anyone can make `parley-UID` first and then swap the socket, and a bot would talk to them.
    public static func defaultPath(account: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let base: String
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            base = runtime + "/parley"
        } else {
            base = "/tmp/parley-\(getuid())"
        }
        try PrivateDirectory.make(base, remedy: "if you did not make it, remove it (`rm -r \(base)`) and start the daemon again; " +
                                  "or set $XDG_RUNTIME_DIR, or pass --socket with a path in a directory only you can use")
        let safe = String(account.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" || $0 == "@" ? $0 : "_" })
        return base + "/" + safe + ".sock"
    }
}
