import Dispatch
import Foundation

/// Independent checks spread over the machine's cores. A joiner verifies every leaf's signature in the
/// tree it is given (RFC 9420 §12.4.3.1, §7.3): at 1,000 leaves those Ed25519 verifications were most of
/// a join. Each check still runs, on its own leaf; only the order in which they finish changes.
enum ParallelChecks {
    /// Below this many checks, one thread: handing work to others costs more than it saves.
    static let minimumPerThread = 64

    /// Whether `check` holds for every index in `0..<count`, run in contiguous slices on up to one thread per
    /// active core.
    static func all(_ count: Int, _ check: @Sendable (Int) -> Bool) -> Bool {
        let threads = min(ProcessInfo.processInfo.activeProcessorCount, count / minimumPerThread)
        guard threads > 1 else { return (0..<count).allSatisfy(check) }
        // One flag per slice, each written by its own thread only.
        nonisolated(unsafe) let failed = UnsafeMutableBufferPointer<Bool>.allocate(capacity: threads)
        failed.initialize(repeating: false)
        defer { failed.deallocate() }
        DispatchQueue.concurrentPerform(iterations: threads) { slice in
            let range = (count * slice / threads)..<(count * (slice + 1) / threads)
            failed[slice] = !range.allSatisfy(check)
        }
        return !failed.contains(true)
    }
}
