import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Client sockets for fixtures that read and write raw bytes. Each function returns a connected
/// descriptor or throws having closed its own, so a fixture's initializer assigns its descriptor only once
/// it is connected. (A class whose throwing init fails after every stored property is set still runs its
/// deinit: a fixture that closed its descriptor and then threw closed it twice, the second time closing
/// whatever another thread had opened under that number in between, such as a pipe of a child process
/// being spawned or a socket NIO was connecting.)
public enum ConnectedSocket {
    /// A TCP connection to `host:port`.
    public static func tcp(host: String = "127.0.0.1", port: Int) throws -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return try connected(AF_INET, to: address, naming: "\(host):\(port)")
    }

    /// A connection to the Unix socket at `path`.
    public static func unix(path: String) throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard path.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw FixtureError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        return try connected(AF_UNIX, to: address, naming: path)
    }

    private static func connected<Address>(_ family: Int32, to address: Address, naming name: String) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket: \(String(cString: strerror(errno)))") }
        var address = address
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            _ = Glibc.close(fd)
            throw FixtureError("cannot connect to \(name): \(reason)")
        }
        return fd
    }
}
