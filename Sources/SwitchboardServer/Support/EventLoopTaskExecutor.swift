import NIOCore

/// Runs Swift tasks on a NIO event loop, so a connection's async code and its channel share one thread.
///
/// Without it every request would hop from the event loop to the global executor and back: two thread
/// wake-ups per request, which dominate the cost of a small response.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
