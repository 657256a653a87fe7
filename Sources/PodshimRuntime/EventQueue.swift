import Glibc
import PodshimSystem

/// A thread-safe FIFO whose consumer can wait with a deadline on CLOCK_MONOTONIC.
/// (NSCondition waits on the wall clock, which can jump.)
public final class EventQueue<Event>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var events: [Event] = []

    public init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func post(_ event: Event) {
        pthread_mutex_lock(mutex)
        events.append(event)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// The next event, or nil once `deadline` has passed with none. nil deadline waits forever.
    public func next(until deadline: MonotonicInstant?) -> Event? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while events.isEmpty {
            if let deadline {
                if MonotonicInstant.now() >= deadline { return nil }
                var time = deadline.asTimespec
                _ = pthread_cond_timedwait(condition, mutex, &time)
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return events.removeFirst()
    }
}
