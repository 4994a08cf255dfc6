import NIOConcurrencyHelpers

/// The requests of one storage waiting for a connection of the pool, each with its deadline, and one task
/// that ends the waits past theirs (see `PostgresRelayStorage.withConnection`).
///
/// Why not a timer per request: a task sleeping beside each lease was a dispatch timer made and cancelled
/// on every statement, in a task group of two children (with the pool's own timers, see
/// `PostgresRelayStorage.init`, the sleeps were 6.6% of a node's CPU samples under `perf` on the bench's
/// closed loop, over a Unix socket; 1.2% after both changes). Here a request is an entry in a table, and
/// one task looks at the table four times a second while any request is in it.
///
/// An entry is waiting, then leased or timed out, whichever comes first under the lock: a request that
/// timed out never runs its statements, even if its connection comes a moment later, and a request that
/// has its connection is never cancelled by the watch.
final class PostgresLeaseWatch: Sendable {
    static let tick = Duration.milliseconds(250)

    private enum Entry {
        case waiting(deadline: ContinuousClock.Instant, cancel: (@Sendable () -> Void)?)
        case timedOut
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var next: UInt64 = 0
        var watching = false
    }

    private let state = NIOLockedValueBox(State())

    /// A new waiting entry; `attach` gives it what ends the wait.
    func begin(deadline: ContinuousClock.Instant) -> UInt64 {
        let (ticket, startWatching) = state.withLockedValue { state in
            state.next += 1
            state.entries[state.next] = .waiting(deadline: deadline, cancel: nil)
            defer { state.watching = true }
            return (state.next, !state.watching)
        }
        if startWatching { Task { await self.watch() } }
        return ticket
    }

    /// What ends the wait of `ticket`: run at once if its deadline already passed.
    func attach(_ ticket: UInt64, cancel: @escaping @Sendable () -> Void) {
        let overdue = state.withLockedValue { state -> Bool in
            switch state.entries[ticket] {
            case .waiting(let deadline, nil): state.entries[ticket] = .waiting(deadline: deadline, cancel: cancel); return false
            case .timedOut: return true
            default: return false
            }
        }
        if overdue { cancel() }
    }

    /// The request has its connection: true unless it timed out first (then it must not use it).
    func leased(_ ticket: UInt64) -> Bool {
        state.withLockedValue { state in
            guard case .waiting = state.entries[ticket] else { return false }
            state.entries[ticket] = nil
            return true
        }
    }

    /// Forgets `ticket`; whether it timed out.
    func end(_ ticket: UInt64) -> Bool {
        state.withLockedValue { state in
            guard case .timedOut = state.entries.removeValue(forKey: ticket) else { return false }
            return true
        }
    }

    private func watch() async {
        while true {
            try? await Task.sleep(for: Self.tick)
            let now = ContinuousClock.now
            let (overdue, done) = state.withLockedValue { state -> ([@Sendable () -> Void], Bool) in
                var overdue: [@Sendable () -> Void] = []
                for (ticket, entry) in state.entries {
                    guard case .waiting(let deadline, let cancel) = entry, deadline <= now else { continue }
                    state.entries[ticket] = .timedOut
                    if let cancel { overdue.append(cancel) }
                }
                let done = state.entries.isEmpty
                if done { state.watching = false }
                return (overdue, done)
            }
            for cancel in overdue { cancel() }
            if done { return }
        }
    }
}
