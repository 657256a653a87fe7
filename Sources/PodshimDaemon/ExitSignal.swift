import PodshimSystem
import Synchronization

/// A one-shot "it has exited" that async callers can wait for with a timeout on the signal's
/// clock. Firing cancels every waiter's timer, so none is left pending once the process has exited.
final class ExitSignal: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Bool, Never>
        var timer: TimerToken?
    }

    private struct State {
        var fired = false
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    private let clock: any Timekeeper

    init(clock: any Timekeeper = DeadlineTimer.shared) {
        self.clock = clock
    }

    var hasFired: Bool { state.withLock { $0.fired } }

    /// Waits still pending (for tests: zero once fired).
    var pendingTimeouts: Int { state.withLock { $0.waiters.count } }

    /// Wakes every waiter; later waits return at once.
    func fire() {
        let resumed = state.withLock { state -> [Waiter] in
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in resumed {
            if let timer = waiter.timer { clock.cancel(timer) }
            waiter.continuation.resume(returning: true)
        }
    }

    /// True once fired, false when `seconds` passed first.
    func wait(seconds: Double) async -> Bool {
        let deadline = clock.now().advanced(bySeconds: seconds)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let token: UInt64? = state.withLock { state in
                if state.fired { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = Waiter(continuation: continuation, timer: nil)
                return state.nextWaiter
            }
            guard let token else { return continuation.resume(returning: true) }
            let timer = clock.schedule(at: deadline) { [weak self] _ in self?.expire(token) }
            let stale = state.withLock { state -> Bool in
                guard state.waiters[token] != nil else { return true }
                state.waiters[token]?.timer = timer
                return false
            }
            if stale { clock.cancel(timer) } // fired in between
        }
    }

    private func expire(_ token: UInt64) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: token) }
        waiter?.continuation.resume(returning: false)
    }
}
