import Foundation
import NIOCore
import NIOHTTP1

/// One `GET /api/v1/events` client: notifications become Server-Sent Events (`event:receive`, `data:` the
/// notification's params, as signal-cli writes them), written by one task in the order they were handed
/// over. A message's event carries an `id:` that is the stream's durable position: the store id of the
/// last message written for each account (just the number when the stream carries one account, else
/// `ACCOUNT=N` pairs joined by commas). A client that reconnects with it as `Last-Event-ID` resumes right
/// after it, so nothing is lost or repeated across the reconnect.
final class EventStreamPeer: NotificationPeer, @unchecked Sendable {
    private struct Frame {
        enum Kind {
            case event(method: String, params: JSONValue, account: String, cursor: Int64?)
            case comment
        }
        let kind: Kind
        let written: CheckedContinuation<Bool, Never>?
    }

    private let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    private let channel: any Channel
    private let frames: AsyncStream<Frame>
    private let queue: AsyncStream<Frame>.Continuation
    private let lock = NSLock()
    private var closed = false
    private var queuedOffers = 0
    /// Touched only by the writing task.
    private var positions: [String: Int64]
    private let multiAccount: Bool

    init(outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, channel: any Channel, start: [String: Int64], multiAccount: Bool) {
        self.outbound = outbound
        self.channel = channel
        positions = start
        self.multiAccount = multiAccount
        (frames, queue) = AsyncStream.makeStream(of: Frame.self)
    }

    var isClosed: Bool { lock.withLock { closed } }

    func deliver(_ method: String, _ params: JSONValue, account: String, cursor: Int64?) async -> Bool {
        await withCheckedContinuation { continuation in
            let frame = Frame(kind: .event(method: method, params: params, account: account, cursor: cursor), written: continuation)
            guard !isClosed, case .enqueued = queue.yield(frame) else {
                continuation.resume(returning: false)
                return
            }
        }
    }

    @discardableResult
    func offer(_ method: String, _ params: JSONValue) -> Bool {
        enqueueOffer(.event(method: method, params: params, account: "", cursor: nil))
    }

    /// A keep-alive comment (a dead client shows up as a failed write).
    func offerComment() { _ = enqueueOffer(.comment) }

    private func enqueueOffer(_ kind: Frame.Kind) -> Bool {
        let accepted = lock.withLock {
            guard !closed, queuedOffers < LineConnection.maxQueuedOffers else { return false }
            queuedOffers += 1
            return true
        }
        guard accepted else { return false }
        if case .enqueued = queue.yield(Frame(kind: kind, written: nil)) { return true }
        return false
    }

    /// Stops the stream: what is still queued is answered "not written" and the connection closes.
    func close() {
        let first = lock.withLock {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        queue.finish()
        channel.close(promise: nil)
    }

    /// Writes the queued frames until the stream closes; returns once every frame was answered.
    func runWriter() async {
        for await frame in frames {
            if frame.written == nil { lock.withLock { queuedOffers -= 1 } }
            var ok = false
            if !isClosed {
                let text = render(frame.kind)
                do {
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: text))))
                    ok = true
                } catch {
                    close()
                }
            }
            frame.written?.resume(returning: ok)
        }
    }

    private func render(_ kind: Frame.Kind) -> String {
        switch kind {
        case .comment:
            return ":\n\n"
        case .event(let method, let params, let account, let cursor):
            var text = ""
            if let cursor {
                positions[account] = cursor
                text += "id:" + id() + "\n"
            }
            // The serialized JSON escapes every line break, so it is one data line.
            return text + "event:" + method + "\ndata:" + params.serialized + "\n\n"
        }
    }

    private func id() -> String {
        if !multiAccount, let only = positions.values.first { return String(only) }
        return positions.keys.sorted().map { "\($0)=\(positions[$0]!)" }.joined(separator: ",")
    }

    /// The positions a `Last-Event-ID` names, for a stream of `accounts`; nil if it is not an id of ours.
    static func parseId(_ text: String, accounts: [String]) -> [String: Int64]? {
        if let number = Int64(text), number >= 0 {
            return accounts.count == 1 ? [accounts[0]: number] : nil
        }
        var out: [String: Int64] = [:]
        for pair in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = pair.lastIndex(of: "="), let number = Int64(pair[pair.index(after: equals)...]), number >= 0 else { return nil }
            let account = String(pair[..<equals])
            // An account not in this stream (an id from a wider stream) is ignored.
            if accounts.contains(account) { out[account] = number }
        }
        return out
    }
}
