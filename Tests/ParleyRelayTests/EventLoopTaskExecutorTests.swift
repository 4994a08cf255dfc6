import NIOCore
import NIOPosix
@testable import ParleyRelay
import Testing

/// The relay's request handlers prefer their connection's event loop (`GuardedChannel.handle`): their code
/// must run there from the start and after every suspension, also one resumed from another thread.
@Suite("Event-loop task executor")
struct EventLoopTaskExecutorTests {
    @Test("a task preferring a loop's executor runs on that loop, before and after it suspends")
    func runsOnItsLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loop = group.next(), other = group.next()
        var placements: [Bool] = []
        await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            placements.append(loop.inEventLoop)
            await Task.yield()
            placements.append(loop.inEventLoop)
            // Resumed by a job completed on the other loop's thread.
            let value = try? await other.submit { 42 }.get()
            placements.append(loop.inEventLoop && value == 42)
            // And by an actor, which runs on the preferred executor too.
            _ = await Counter().next()
            placements.append(loop.inEventLoop)
        }
        #expect(placements == [true, true, true, true])
        #expect(!loop.inEventLoop)
        try await group.shutdownGracefully()
    }

    private actor Counter {
        var value = 0
        func next() -> Int { value += 1; return value }
    }
}
