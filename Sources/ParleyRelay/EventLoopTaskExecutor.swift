import NIOCore

/// Runs a task's jobs on the event loop of its connection. A request handler preferring it runs on the
/// thread that reads and writes its socket, instead of hopping to Swift's cooperative threads for every
/// request part and back for every write.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
