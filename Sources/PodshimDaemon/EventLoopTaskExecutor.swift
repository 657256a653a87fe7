import NIOCore

/// A `TaskExecutor` that runs jobs on one NIO event loop. The CRI server's transport and its
/// handlers share that loop (``Daemon``): a read-only RPC is decoded, answered and written on one
/// thread, with no hop to Swift's cooperative pool and back. Work that blocks or takes long still
/// goes to Dispatch explicitly (`offload`), and the reply resumes here. `podshim-bench` runs its
/// client tasks on its connection's loop with it too.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    public init(_ loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
