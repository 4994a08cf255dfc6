import Foundation
import NIOConcurrencyHelpers
@testable import ParleyRelay
import Testing

/// The bound on a request's wait for a connection of the PostgreSQL pool (`PostgresLeaseWatch`): one watch
/// for all requests instead of a timer of each.
@Suite("PostgreSQL lease watch")
struct PostgresLeaseWatchTests {
    @Test("a wait past its deadline is ended, and a connection that comes after it is not used")
    func overdue() async throws {
        let watch = PostgresLeaseWatch()
        let cancelled = NIOLockedValueBox(0)
        let ticket = watch.begin(deadline: .now + .milliseconds(50))
        watch.attach(ticket) { cancelled.withLockedValue { $0 += 1 } }
        // The bound only keeps a broken watch from hanging the run: the full suite on two cores can keep the
        // cooperative threads (the watch's and this loop's) busy for tens of seconds.
        let start = ContinuousClock.now
        while cancelled.withLockedValue({ $0 }) == 0, ContinuousClock.now - start < .seconds(120) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(cancelled.withLockedValue { $0 } == 1)
        #expect(!watch.leased(ticket))
        #expect(watch.end(ticket))
    }

    @Test("a request that has its connection is not cancelled when its deadline passes; one attached after its deadline is cancelled at once")
    func leasedInTime() async throws {
        let watch = PostgresLeaseWatch()
        let cancelled = NIOLockedValueBox(0)
        let ticket = watch.begin(deadline: .now + .milliseconds(100))
        watch.attach(ticket) { cancelled.withLockedValue { $0 += 1 } }
        #expect(watch.leased(ticket))
        try await Task.sleep(for: PostgresLeaseWatch.tick * 3)
        #expect(cancelled.withLockedValue { $0 } == 0)
        #expect(!watch.end(ticket))

        let late = watch.begin(deadline: .now)
        try await Task.sleep(for: PostgresLeaseWatch.tick * 3)
        watch.attach(late) { cancelled.withLockedValue { $0 += 1 } }
        #expect(cancelled.withLockedValue { $0 } == 1)
        #expect(watch.end(late))
    }

    @Test("with no server at the address, a statement waits for a connection only as long as the lease timeout, then throws DatabaseUnreachable")
    func noServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-no-pg-\(UUID().uuidString)").path
        let location = try PostgresLocation(url: "postgresql://nobody@/nothing?host=\(directory)")
        let storage = PostgresRelayStorage(location: location, connections: 2, leaseTimeout: .milliseconds(300))
        defer { storage.close() }
        let start = ContinuousClock.now
        await #expect(throws: DatabaseUnreachable.self) { _ = try await storage.account("bob@relay.test") }
        // Not before the lease timeout; the upper bound only tells a wait that never ends (a pool that keeps
        // trying) from one the watch ended late on a busy machine.
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(300) && waited < .seconds(120), "\(waited)")
    }
}
