import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 client on one kept-alive loopback connection, for the groups benchmark: the group
/// endpoints are not in `RelayClient` on this branch, and one small client used for both the group and
/// the 1:1 sends keeps the sender-CPU comparison even (no event loop, no connection pool on either side).
/// Answers must carry `Content-Length` (the relay's do) or have no body.
final class LoopbackHTTP {
    struct Answer {
        let status: Int
        let body: [UInt8]
    }

    private let port: Int
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        self.port = port
        try connectSocket()
    }

    deinit { if fd >= 0 { close(fd) } }

    private func connectSocket() throws {
        if fd >= 0 { close(fd) }
        buffer.removeAll()
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BenchError("connect: \(String(cString: strerror(errno)))") }
    }

    /// One request; reconnects once if the relay closed the idle connection.
    func request(_ method: String, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = []) throws -> Answer {
        do {
            return try exchange(method, path, body: body, headers: headers)
        } catch let error as Closed {
            _ = error
            try connectSocket()
            return try exchange(method, path, body: body, headers: headers)
        }
    }

    /// The connection ended before an answer began (an idle connection the relay closed).
    private struct Closed: Error {}

    private func exchange(_ method: String, _ path: String, body: [UInt8]?, headers: [(String, String)]) throws -> Answer {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" } else if method != "GET" { head += "Content-Length: 0\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (body ?? [])
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { if sent == 0 { throw Closed() }; throw BenchError("send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        // The head.
        var headEnd: Int?
        while true {
            if let end = Self.find([13, 10, 13, 10], in: buffer) { headEnd = end; break }
            guard try fill() else { if buffer.isEmpty { throw Closed() }; throw BenchError("the relay closed the connection mid-answer") }
        }
        let headText = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        let lines = headText.split(separator: "\r\n")
        guard let statusLine = lines.first, statusLine.split(separator: " ").count >= 2, let status = Int(statusLine.split(separator: " ")[1]) else {
            throw BenchError("not an HTTP answer: \(headText.prefix(80))")
        }
        var length = 0
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].lowercased(), value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { length = Int(value) ?? 0 }
            if name == "transfer-encoding" { throw BenchError("chunked answers are not handled by the bench's HTTP client") }
        }
        while buffer.count < length {
            guard try fill() else { throw BenchError("the relay closed the connection mid-body") }
        }
        let answer = Array(buffer[..<length])
        buffer.removeFirst(length)
        return Answer(status: status, body: answer)
    }

    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw BenchError("recv: \(String(cString: strerror(errno)))") }
        if n == 0 { return false }
        buffer += chunk[..<n]
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        }
        return nil
    }
}
