import CShims
import Foundation
import Glibc

/// Runs actions at CLOCK_MONOTONIC deadlines from one dedicated thread blocked in `read` on an
/// absolute timerfd, with a timer slack of 1 ns and real-time priority where podshim may set it,
/// so that an action runs at its deadline rather than "about then". Scheduling an earlier deadline
/// re-arms the timerfd from the scheduling thread; the blocked read then wakes at the new time.
///
/// The timerfd is armed ``earlyWake`` before the deadline and the thread spins the rest: waking a
/// thread costs tens to hundreds of microseconds (measured on this project's 2-core VM: p50 60 µs,
/// p99 260 µs), spinning a few hundred microseconds per deadline costs nothing that matters.
///
/// Actions run on the timer thread and must be short (a pidfd_send_signal); anything slower
/// belongs on another queue.
public final class DeadlineTimer: Timekeeper, @unchecked Sendable { // its state is under `lock`; the timerfd is a kernel handle
    public static let shared = DeadlineTimer()

    public typealias Token = TimerToken

    private struct Entry {
        var deadline: MonotonicInstant
        var token: Token
        var action: @Sendable (MonotonicInstant) -> Void
    }

    private let lock = NSLock()
    private var entries: [Entry] = []
    private var nextToken: UInt64 = 0
    private var started = false
    private let timerFD: Int32
    /// How long before a deadline the thread wakes to spin until it.
    public static let earlyWakeNanoseconds: UInt64 = 400_000

    public init() {
        timerFD = psh_timerfd_create()
        precondition(timerFD >= 0, "timerfd_create: \(Errno(rawValue: -timerFD))")
    }

    deinit { close(timerFD) }

    /// Arms the timerfd for the earliest entry (lock held).
    private func rearm() {
        if let first = entries.first {
            let early = first.deadline.nanoseconds > Self.earlyWakeNanoseconds ? first.deadline.nanoseconds - Self.earlyWakeNanoseconds : 1
            _ = psh_timerfd_arm(timerFD, early)
        } else {
            _ = psh_timerfd_disarm(timerFD)
        }
    }

    /// CLOCK_MONOTONIC.
    public func now() -> MonotonicInstant { MonotonicInstant.now() }

    /// Runs `action` at `deadline` (at once if it has passed), with the instant it actually ran.
    @discardableResult
    public func schedule(at deadline: MonotonicInstant, _ action: @escaping @Sendable (_ firedAt: MonotonicInstant) -> Void) -> Token {
        lock.lock()
        defer { lock.unlock() }
        startIfNeeded()
        nextToken += 1
        let token = Token(value: nextToken)
        let index = entries.firstIndex { $0.deadline > deadline } ?? entries.endIndex
        entries.insert(Entry(deadline: deadline, token: token, action: action), at: index)
        if index == 0 { rearm() }
        return token
    }

    /// Cancels a scheduled action. True when it had not run yet (it never will).
    @discardableResult
    public func cancel(_ token: Token) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let index = entries.firstIndex(where: { $0.token == token }) else { return false }
        entries.remove(at: index)
        if index == 0 { rearm() }
        return true
    }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        let thread = Thread { [self] in run() }
        thread.name = "podshim-deadlines"
        thread.stackSize = 256 << 10
        thread.start()
    }

    private func run() {
        _ = psh_prepare_timer_thread()
        var expirations: UInt64 = 0
        while true {
            let result = read(timerFD, &expirations, 8)
            if result < 0 && errno == EINTR { continue }
            // Woken up to earlyWake before the earliest deadline: spin to it.
            if let first = lock.withLock({ entries.first?.deadline }),
               first.nanoseconds <= MonotonicInstant.now().nanoseconds + 2 * Self.earlyWakeNanoseconds {
                while MonotonicInstant.now() < first {}
            }
            let now = MonotonicInstant.now()
            lock.lock()
            var due: [Entry] = []
            while let first = entries.first, first.deadline <= now {
                due.append(entries.removeFirst())
            }
            rearm()
            lock.unlock()
            for entry in due { entry.action(MonotonicInstant.now()) }
        }
    }
}
