import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The relay's open files: every connection holds one descriptor, and so do the database, the attachment
/// being written, the log and the runtime itself. A relay that let connections take the last descriptor
/// died: libdispatch's worker-pool monitor aborts (SIGILL) when it cannot open /proc/<tid>/stat, taking
/// every connected device with it. So the soft limit is raised to the hard one at start, and connections
/// are capped below it, leaving a reserve for everything else.
public enum DescriptorBudget {
    /// Descriptors kept out of the connections' reach: a quarter of the limit, at least `minimumReserve`.
    /// What uses them: the database (a writer, up to five readers and up to five more for the hot reads,
    /// three files each), one file per attachment upload in progress, standard output and error, the event
    /// loops' epoll, event and timer descriptors, and libdispatch reading /proc/<tid>/stat.
    public static let minimumReserve = 64

    /// Raises the soft RLIMIT_NOFILE to the hard limit (where the system allows) and returns the soft
    /// limit now in force, nil if it cannot be read. An unlimited hard limit is not taken as is: the
    /// kernel caps descriptors at fs.nr_open, so the soft limit goes to that.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        var target = limit.rlim_max
        if target == rlim_t.max { target = rlim_t(kernelOpenFileCeiling() ?? Int(limit.rlim_cur)) }
        if target > limit.rlim_cur {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
    }

    /// The connection cap for an open-file limit: the limit less the reserve (never below one).
    public static func defaultMaxConnections(openFileLimit: Int) -> Int {
        max(1, openFileLimit - reserve(openFileLimit: openFileLimit))
    }

    /// The largest cap allowed under a limit: it must leave `minimumReserve` descriptors free.
    public static func largestMaxConnections(openFileLimit: Int) -> Int {
        max(1, openFileLimit - minimumReserve)
    }

    static func reserve(openFileLimit: Int) -> Int { max(minimumReserve, openFileLimit / 4) }

    private static func kernelOpenFileCeiling() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Every open connection of the relay, counted against `--max-connections`. A connection past the cap is
/// closed at once (it has not sent anything yet); the operator hears of it in one line at most every
/// `logInterval`, with how many were refused since the last line.
final class OpenConnections: Sendable {
    let limit: Int
    static let logInterval = TimeAmount.seconds(10)
    private struct State {
        var open = 0
        var refusedSinceLine = 0
        var lastLine: NIODeadline?
    }
    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Counts a new connection, or answers false (and notes the refusal) when `limit` are open.
    func open() -> Bool {
        var line: (open: Int, refused: Int)?
        let counted = state.withLockedValue { state in
            if state.open < limit {
                state.open += 1
                return true
            }
            state.refusedSinceLine += 1
            let now = NIODeadline.now()
            if state.lastLine.map({ now >= $0 + Self.logInterval }) ?? true {
                state.lastLine = now
                line = (state.open, state.refusedSinceLine)
                state.refusedSinceLine = 0
            }
            return false
        }
        if let line {
            logger.warning("refusing new connections: \(line.open) open, the most --max-connections allows; \(line.refused) refused since the last such line")
        }
        return counted
    }

    func close() {
        state.withLockedValue { $0.open = max(0, $0.open - 1) }
    }

    var openCount: Int { state.withLockedValue { $0.open } }
}
