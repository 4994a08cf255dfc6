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
