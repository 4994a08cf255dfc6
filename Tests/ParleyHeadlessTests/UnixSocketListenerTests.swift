import Foundation
import ParleyHeadless
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What `parley daemon --socket PATH` does with what is already at PATH.
@Suite("Unix socket listener")
struct UnixSocketListenerTests {
    private func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-socket-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("a regular file at the path is refused and left as it was")
    func regularFileIsKept() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/notes.txt"
        FileManager.default.createFile(atPath: path, contents: Data("mine".utf8))
        let error = #expect(throws: SocketError.self) { _ = try UnixSocketListener(path: path) }
        #expect(error?.description.contains("is not a socket") == true)
        #expect(FileManager.default.contents(atPath: path) == Data("mine".utf8))
    }

    @Test("a stale socket file (its daemon died) is replaced")
    func staleSocketIsReplaced() throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/parley.sock"
        // A socket bound and closed without removing its file, as a killed daemon leaves it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: path.utf8); raw[path.utf8.count] = 0 }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))
        let listener = try UnixSocketListener(path: path)
        listener.close()
    }
}

/// The default socket's directory (issue #19, item 2): made 0700, and one that is there already is used
/// only when it is a real directory of this user's with mode 0700.
@Suite("Default socket directory")
struct DefaultSocketDirectoryTests {
    private func runtime() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-runtime-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return directory
    }

    private func mode(_ path: String) -> mode_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o777 : 0
    }

    @Test("a missing directory is made with mode 0700")
    func madePrivate() throws {
        let root = try runtime()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = try UnixSocketListener.defaultPath(account: "bot@relay.test", environment: ["XDG_RUNTIME_DIR": root])
        #expect(path == root + "/parley/bot@relay.test.sock")
        #expect(mode(root + "/parley") == 0o700)
        // A second daemon start finds it as it left it.
        _ = try UnixSocketListener.defaultPath(account: "bot@relay.test", environment: ["XDG_RUNTIME_DIR": root])
    }

    @Test("a directory left open (0777, as another user would make it first) is refused, with what to do")
    func openDirectoryRefused() throws {
        let root = try runtime()
        defer { try? FileManager.default.removeItem(atPath: root) }
        mkdir(root + "/parley", 0o700)
        chmod(root + "/parley", 0o777)
        let error = #expect(throws: (any Error).self) {
            _ = try UnixSocketListener.defaultPath(account: "bot@relay.test", environment: ["XDG_RUNTIME_DIR": root])
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("mode is 777") && text.contains("rm -r \(root)/parley") && text.contains("--socket"), "\(text)")
        #expect(mode(root + "/parley") == 0o777, "nothing is changed")
    }

    @Test("a symbolic link in the directory's place is refused, not followed")
    func symlinkRefused() throws {
        let root = try runtime()
        defer { try? FileManager.default.removeItem(atPath: root) }
        mkdir(root + "/elsewhere", 0o700)
        symlink(root + "/elsewhere", root + "/parley")
        let error = #expect(throws: (any Error).self) {
            _ = try UnixSocketListener.defaultPath(account: "bot@relay.test", environment: ["XDG_RUNTIME_DIR": root])
        }
        #expect(error.map { "\($0)" }?.contains("symbolic link") == true)
    }

    // Giving a directory away needs root (reported as skipped otherwise).
    @Test("a directory owned by another user is refused, even with mode 0700", .enabled(if: getuid() == 0))
    func otherOwnerRefused() throws {
        let root = try runtime()
        defer { try? FileManager.default.removeItem(atPath: root) }
        mkdir(root + "/parley", 0o700)
        chown(root + "/parley", 65534, 65534)
        let error = #expect(throws: (any Error).self) {
            _ = try UnixSocketListener.defaultPath(account: "bot@relay.test", environment: ["XDG_RUNTIME_DIR": root])
        }
        #expect(error.map { "\($0)" }?.contains("belongs to another user (uid 65534)") == true)
    }
}
