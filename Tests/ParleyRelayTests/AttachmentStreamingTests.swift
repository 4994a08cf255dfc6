import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Downloads stream from disk: readers that take a blob slowly cost the relay a chunk each, not the blob.
/// Measured on a real relay process, by its resident memory in /proc.
@Suite("Relay: attachment downloads are streamed")
struct AttachmentStreamingTests {
    static let blobSize = 32 << 20   // a PADMÉ bucket (2²⁵)
    static let readers = 8

    @Test("eight slow readers of a 32 MiB blob grow the relay's resident memory by far less than one copy each; a full read is exact")
    func slowReadersStayCheap() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let blob = SystemRandom().bytes(Self.blobSize)
            let slot = try await client.createAttachment(size: blob.count, token: try await alice.token())
            try await client.uploadAttachment(id: slot.id, bytes: blob, uploadSecret: slot.uploadSecret)
            let pid = try #require(relay.processIdentifier)
            let before = try Self.residentKiB(pid)

            // Each reader asks for the blob, takes its first 256 KiB, then stops reading.
            var sockets: [Int32] = []
            defer { sockets.forEach { close($0) } }
            var first: [UInt8] = []
            for index in 0..<Self.readers {
                let fd = try Self.connect(port: relay.port)
                sockets.append(fd)
                try Self.send(fd, "GET /v1/attachments/\(slot.id) HTTP/1.1\r\nHost: \(relay.name)\r\n\r\n")
                let start = try Self.receive(fd, count: 256 << 10)
                if index == 0 { first = start }
            }
            var peak = before
            for _ in 0..<20 {
                peak = max(peak, try Self.residentKiB(pid))
                try await Task.sleep(for: .milliseconds(100))
            }
            let growthMiB = Double(peak - before) / 1024
            print("relay resident memory: \(before / 1024) MiB before, \(peak / 1024) MiB peak with \(Self.readers) slow readers")
            // Reading the whole blob into memory per request costs at least 8 × 32 MiB = 256 MiB; streaming
            // measured about 40 MiB here (allocator arenas of the pool threads, not blobs).
            #expect(growthMiB < 96, "resident memory grew by \(growthMiB) MiB with \(Self.readers) slow readers of 32 MiB")

            // One reader goes on to the end: the stream is the blob, byte for byte.
            let head = try #require(Self.headEnd(first))
            #expect(String(decoding: first[..<head], as: UTF8.self).lowercased().contains("content-length: \(Self.blobSize)"))
            let body = Array(first[head...]) + (try Self.receive(sockets[0], count: head + Self.blobSize - first.count))
            #expect(body == blob)
        }
    }

    /// VmRSS of `pid` in KiB.
    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let value = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw FixtureError("no VmRSS in /proc/\(pid)/status")
        }
        return value
    }

    /// A blocking TCP connection to 127.0.0.1:`port` with a small receive buffer (so the relay meets
    /// back-pressure soon).
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FixtureError("socket() failed") }
        var small: Int32 = 64 << 10
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw FixtureError("connect() failed")
        }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { throw FixtureError("send() failed") }
    }

    /// Reads exactly `count` bytes.
    static func receive(_ fd: Int32, count: Int) throws -> [UInt8] {
        var received: [UInt8] = []
        received.reserveCapacity(count)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while received.count < count {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - received.count), 0) }
            guard n > 0 else { throw FixtureError("the relay closed the download after \(received.count) bytes") }
            received += buffer[0..<n]
        }
        return received
    }

    /// Where the HTTP head (at most 4 KiB here) ends.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...min(bytes.count - 4, 4096) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index + 4
        }
        return nil
    }
}
