import Dispatch
import PodshimSystem
import Synchronization

/// A FIFO of a pod's events (exits, probe results, stop requests) with one consumer, a task that
/// awaits the next event with a deadline on the queue's clock. Producers post from any thread
/// (the reaper, the timer, Dispatch workers). No thread waits on it: a pod costs no thread.
public final class EventQueue<Event: Sendable>: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Event?, Never>
        var timer: TimerToken?
    }

    private struct State {
        var events: [Event] = []
        var head = 0
        var waiter: Waiter?
        var nextWaiter: UInt64 = 0

        mutating func popFirst() -> Event? {
            guard head < events.count else { return nil }
            let event = events[head]
            head += 1
            if head > 64 && head * 2 > events.count {
                events.removeFirst(head)
                head = 0
            }
            return event
        }
    }

    private let state = Mutex(State())
    /// The clock deadlines are measured on.
    public let clock: any Timekeeper

    public init(clock: any Timekeeper = DeadlineTimer.shared) {
        self.clock = clock
    }

    public func post(_ event: Event) {
        let waiter: Waiter? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.events.append(event)
            return nil
        }
        guard let waiter else { return }
        if let timer = waiter.timer { clock.cancel(timer) }
        waiter.continuation.resume(returning: event)
    }

    /// The next event, or nil once `deadline` has passed with none (nil deadline: wait for one)
    /// or when the waiting task is cancelled. One consumer at a time.
    public func next(until deadline: MonotonicInstant?) async -> Event? {
        if let event = state.withLock({ $0.popFirst() }) { return event }
        if let deadline, clock.now() >= deadline { return nil }
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Event?, Never>) in
                let ready: Event?? = state.withLock { state in
                    if let event = state.popFirst() { return .some(event) }
                    if Task.isCancelled { return .some(nil) }
                    precondition(state.waiter == nil, "EventQueue has one consumer")
                    state.waiter = Waiter(id: id, continuation: continuation, timer: nil)
                    return nil
                }
                if let ready { return continuation.resume(returning: ready) }
                guard let deadline else { return }
                let timer = clock.schedule(at: deadline) { [weak self] _ in self?.expire(id) }
                let stale = state.withLock { state -> Bool in
                    guard state.waiter?.id == id else { return true }
                    state.waiter?.timer = timer
                    return false
                }
                if stale { clock.cancel(timer) } // an event came first
            }
        } onCancel: {
            expire(id)
        }
    }

    /// Ends wait `id` with nil (its deadline passed or its task was cancelled).
    private func expire(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { state in
            guard state.waiter?.id == id else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        guard let waiter else { return }
        if let timer = waiter.timer { clock.cancel(timer) }
        waiter.continuation.resume(returning: nil)
    }

    /// For code already off the async executor (a Dispatch worker): blocks its thread until
    /// ``next(until:)`` returns.
    public func nextBlocking(until deadline: MonotonicInstant?) -> Event? {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Event?>(nil)
        Task {
            let event = await next(until: deadline)
            result.withLock { $0 = event }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }
    }
}
