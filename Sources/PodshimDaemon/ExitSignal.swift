import Dispatch
import Foundation

/// A one-shot "it has exited" that async callers can wait for with a timeout.
final class ExitSignal: @unchecked Sendable { // all state under `lock`
    private let lock = NSLock()
    private var fired = false
    /// Each waiter and the timer that ends its wait; firing cancels the timers, so none is left
    /// pending once the process has exited.
    private var waiters: [UInt64: (continuation: CheckedContinuation<Bool, Never>, timeout: DispatchWorkItem)] = [:]
    private var nextWaiter: UInt64 = 0

    var hasFired: Bool { lock.withLock { fired } }

    /// Timers still pending (for tests: zero once fired).
    var pendingTimeouts: Int { lock.withLock { waiters.count } }

    /// Wakes every waiter; later waits return at once.
    func fire() {
        let resumed = lock.withLock {
            fired = true
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for waiter in resumed {
            waiter.timeout.cancel()
            waiter.continuation.resume(returning: true)
        }
    }

    /// True once fired, false when `seconds` passed first.
    func wait(seconds: Double) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let token: UInt64? = lock.withLock {
                if fired { return nil }
                nextWaiter += 1
                return nextWaiter
            }
            guard let token else {
                continuation.resume(returning: true)
                return
            }
            let expire = DispatchWorkItem { [self] in
                let waiter = lock.withLock { waiters.removeValue(forKey: token) }
                waiter?.continuation.resume(returning: false)
            }
            let waiting: Bool = lock.withLock {
                if fired { return false }
                waiters[token] = (continuation, expire)
                return true
            }
            guard waiting else {
                continuation.resume(returning: true)
                return
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds), execute: expire)
        }
    }
}
