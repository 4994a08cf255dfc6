import ParleyCrypto

/// At most `limit` requests in flight to one relay; the rest wait their turn, first come first served.
///
/// A device sends to its contacts' accounts in parallel (`Engine.postSends`): without a cap, a message to
/// a few hundred contacts on one relay would open as many connections at once, past the relay's
/// per-address limit (`--max-connections-per-ip`, 256). A wait is bounded by the requests ahead of it,
/// each of which has its own deadline.
final class ConnectionSlots: @unchecked Sendable {
    let limit: Int
    private let lock = ParleyCrypto.Lock()
    private var inUse = 0
    private var nextTicket: UInt64 = 0
    private var waiting: [(ticket: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []

    init(limit: Int) {
        self.limit = limit
    }

    var requestsInFlight: Int { lock.withLock { inUse } }
    var requestsWaiting: Int { lock.withLock { waiting.count } }

    /// Takes a slot, waiting for one if all are taken; throws `CancellationError` if the task is
    /// cancelled first (and then holds no slot).
    func acquire() async throws {
        let ticket: UInt64? = lock.withLock {
            if inUse < limit {
                inUse += 1
                return nil
            }
            nextTicket += 1
            return nextTicket
        }
        guard let ticket else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // Decided again under the lock that `release` takes: a slot given back since the first look
                // (when nobody was queued yet) is taken here, or this waiter would sleep beside a free slot.
                let outcome = lock.withLock { () -> Outcome in
                    if Task.isCancelled { return .cancelled }
                    if inUse < limit {
                        inUse += 1
                        return .granted
                    }
                    waiting.append((ticket, continuation))
                    return .queued
                }
                switch outcome {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .granted: continuation.resume()
                case .queued: break
                }
            }
        } onCancel: {
            let removed = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
                guard let index = waiting.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return waiting.remove(at: index).continuation
            }
            removed?.resume(throwing: CancellationError())
        }
    }

    private enum Outcome {
        case cancelled, granted, queued
    }

    /// Gives a slot back: to the longest waiter, if any.
    func release() {
        let next = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
            if waiting.isEmpty {
                inUse -= 1
                return nil
            }
            return waiting.removeFirst().continuation
        }
        next?.resume()
    }
}
