import CShims
import Dispatch
import Glibc
import Synchronization

/// Gives the heap memory a burst of work freed back to the kernel, once the burst is over.
///
/// glibc keeps freed memory in its arenas: after 1,000 pods were started and removed the daemon
/// held 36 MB of heap with 7 MB in use, and its RSS stayed up (each Dispatch worker that ran a
/// removal has an arena of its own). `malloc_trim(0)` returns the free pages of every arena.
/// Callers say when they released something big (a pod's removal); the trim runs `delay` seconds
/// after the last such call, on a Dispatch worker (it takes the arenas' locks, so not per removal
/// and not on the timer thread).
public final class MemoryTrimmer: Sendable {
    private let timekeeper: any Timekeeper
    private let delay: Double
    private let trim: @Sendable () -> Void
    private let pending = Mutex<TimerToken?>(nil)

    public init(timekeeper: any Timekeeper = DeadlineTimer.shared, delay: Double = 1,
                trim: @escaping @Sendable () -> Void = { _ = psh_malloc_trim() }) {
        self.timekeeper = timekeeper
        self.delay = delay
        self.trim = trim
    }

    /// Something big was freed: trim `delay` seconds from now, unless another release comes first.
    public func released() {
        let deadline = timekeeper.now().advanced(bySeconds: delay)
        pending.withLock { token in
            if let token { timekeeper.cancel(token) }
            token = timekeeper.schedule(at: deadline) { [self] _ in
                pending.withLock { $0 = nil }
                DispatchQueue.global(qos: .utility).async { [trim] in trim() }
            }
        }
    }
}
