import Foundation
import Hummingbird
import NIOCore
import NIOPosix

/// An attachment file opened for one download. The descriptor is opened before the response starts, so a
/// blob the sweeper removes meanwhile is still sent whole (the inode lives until the descriptor closes).
/// Reads happen on NIO's thread pool, never on an event loop, one chunk at a time: the next is read only
/// after the connection has taken the last (the writer waits while the socket is not writable).
final class AttachmentStream: Sendable {
    static let chunkSize = 64 * 1024
    private let descriptor: Int32
    let length: Int

    init?(path: String) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            return nil
        }
        self.descriptor = descriptor
        length = Int(status.st_size)
    }

    deinit { close(descriptor) }

    func write(to writer: inout any ResponseBodyWriter) async throws {
        var offset = 0
        while offset < length {
            let count = min(Self.chunkSize, length - offset)
            let chunk = try await NIOThreadPool.singleton.runIfActive { [descriptor, offset] in
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
                    max(0, pread(descriptor, raw.baseAddress, count, off_t(offset)))
                }
                guard read > 0 else { throw AttachmentStreamError.shortRead }
                return buffer
            }
            offset += chunk.readableBytes
            try await writer.write(chunk)
        }
        try await writer.finish(nil)
    }
}

enum AttachmentStreamError: Error { case shortRead }
