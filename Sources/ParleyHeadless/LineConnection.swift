import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One newline-delimited JSON peer: standard input/output, or a client accepted on the Unix socket.
/// A thread does blocking reads and hands complete lines to `lines()`; a serial queue does blocking
/// writes. Reading is back-pressured (at most `maxPendingLines` read ahead of the handler), and so is
/// writing: `send` returns once the line is written, and `offer` refuses a line once `maxQueuedOffers`
/// wait, so a client that stops reading cannot make the daemon grow.
public final class LineConnection: @unchecked Sendable {
    public let id: Int
    private let readFD: Int32
    private let writeFD: Int32
    private let closeOnFinish: Bool
    private let writer: DispatchQueue
    private let lock = NSLock()
    private var closed = false
    private var queuedOffers = 0
    private let readAhead = DispatchSemaphore(value: LineConnection.maxPendingLines)

    public static let maxPendingLines = 64
    public static let maxQueuedOffers = 1024
    /// A longer line is answered with a parse error and skipped.
    public static let maxLineBytes = 4 << 20

    public enum Incoming: Sendable {
        case line(String)
        case oversized
    }

    private static let counter = Counter()

    public init(readFD: Int32, writeFD: Int32, closeOnFinish: Bool) {
        id = Self.counter.next()
        self.readFD = readFD
        self.writeFD = writeFD
        self.closeOnFinish = closeOnFinish
        writer = DispatchQueue(label: "parley.headless.writer.\(id)")
    }

    public var isClosed: Bool { lock.withLock { closed } }

    /// The lines the peer sends, until it closes its end. Call `consumed()` after handling each.
    public func lines() -> AsyncStream<Incoming> {
        let (stream, continuation) = AsyncStream.makeStream(of: Incoming.self)
        let thread = Thread { [self] in
            readLoop(continuation)
            continuation.finish()
        }
        thread.stackSize = 1 << 20
        thread.start()
        return stream
    }

    public func consumed() { readAhead.signal() }

    private func readLoop(_ continuation: AsyncStream<Incoming>.Continuation) {
        var pending = [UInt8]()
        var skipping = false
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !isClosed {
            let n = chunk.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            var start = 0
            for i in 0..<n where chunk[i] == 0x0A {
                if skipping {
                    skipping = false
                } else if pending.count + (i - start) > Self.maxLineBytes {
                    readAhead.wait()
                    continuation.yield(.oversized)
                } else {
                    pending.append(contentsOf: chunk[start..<i])
                    if pending.last == 0x0D { pending.removeLast() }
                    if !pending.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) {
                        readAhead.wait()
                        continuation.yield(.line(String(decoding: pending, as: UTF8.self)))
                    }
                }
                pending.removeAll(keepingCapacity: true)
                start = i + 1
            }
            if !skipping { pending.append(contentsOf: chunk[start..<n]) }
            if pending.count > Self.maxLineBytes {
                pending = []
                skipping = true
                readAhead.wait()
                continuation.yield(.oversized)
            }
        }
    }

    /// Writes one line; false if the peer is gone.
    @discardableResult
    public func send(_ line: String) async -> Bool {
        if isClosed { return false }
        return await withCheckedContinuation { continuation in
            writer.async { continuation.resume(returning: self.writeLine(line)) }
        }
    }

    /// Queues a line without waiting; refuses (false) when the peer is gone or already has
    /// `maxQueuedOffers` lines waiting. For notifications that lose their meaning when late (typing).
    @discardableResult
    public func offer(_ line: String) -> Bool {
        let accepted = lock.withLock {
            guard !closed, queuedOffers < Self.maxQueuedOffers else { return false }
            queuedOffers += 1
            return true
        }
        guard accepted else { return false }
        writer.async {
            _ = self.writeLine(line)
            self.lock.withLock { self.queuedOffers -= 1 }
        }
        return true
    }

    private func writeLine(_ line: String) -> Bool {
        if isClosed { return false }
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Self.write(writeFD, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close()
                return false
            }
            offset += n
        }
        return true
    }

    /// A write that never raises SIGPIPE on a socket whose peer is gone (send with MSG_NOSIGNAL); plain
    /// write for pipes and terminals (the daemon ignores SIGPIPE for those).
    private static func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
        let n = Glibc.send(fd, buffer, count, Int32(MSG_NOSIGNAL))
        if n < 0 && errno == ENOTSOCK { return Glibc.write(fd, buffer, count) }
        return n
    }

    /// Stops reading and writing; a socket is shut down so the reading thread wakes up.
    public func close() {
        let first = lock.withLock {
            defer { closed = true }
            return !closed
        }
        guard first, closeOnFinish else { return }
        _ = shutdown(readFD, Int32(SHUT_RDWR))
        writer.async {
            _ = Glibc.close(self.readFD)
            if self.writeFD != self.readFD { _ = Glibc.close(self.writeFD) }
        }
    }
}

/// Connection ids, unique within the process.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}
