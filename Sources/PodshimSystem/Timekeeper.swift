import Synchronization

/// Names one scheduled action of a ``Timekeeper``, to cancel it.
public struct TimerToken: Hashable, Sendable {
    public let value: UInt64
    public init(value: UInt64) { self.value = value }
}

/// Time for everything that has a deadline (termination, the preStop extension, preStop sleeps,
/// probes, back-off, waits for events and exits): what time it is on CLOCK_MONOTONIC and running an action
/// at an instant. The daemon and `podshim run` use ``DeadlineTimer/shared``; unit tests use a
/// ``ManualClock`` and move time themselves, so no test sleeps.
public protocol Timekeeper: AnyObject, Sendable {
    /// The current instant.
    func now() -> MonotonicInstant
    /// Runs `action` at `deadline` (as soon as possible when it has passed), with the instant it ran.
    @discardableResult
    func schedule(at deadline: MonotonicInstant, _ action: @escaping @Sendable (_ firedAt: MonotonicInstant) -> Void) -> TimerToken
    /// Cancels a scheduled action. True when it had not run yet (it never will).
    @discardableResult
    func cancel(_ token: TimerToken) -> Bool
}

/// A ``Timekeeper`` whose time moves only when a test says so: ``advance(to:)`` runs every action
/// due by then in deadline order, each seeing the clock at its own deadline (so an action that
/// schedules another one before the target instant sees it run too). Nothing runs on another
/// thread.
public final class ManualClock: Timekeeper {
    private struct Entry {
        var deadline: MonotonicInstant
        var token: TimerToken
        var action: @Sendable (MonotonicInstant) -> Void
    }

    private struct State {
        var now: MonotonicInstant
        var entries: [Entry] = []
        var nextToken: UInt64 = 0
    }

    private let state: Mutex<State>

    /// Starts at `start` (an arbitrary instant far from zero by default).
    public init(start: MonotonicInstant = MonotonicInstant(nanoseconds: 1_000_000_000_000)) {
        state = Mutex(State(now: start))
    }

    public func now() -> MonotonicInstant { state.withLock { $0.now } }

    /// Actions scheduled and not yet run or cancelled.
    public var pendingCount: Int { state.withLock { $0.entries.count } }

    /// The earliest pending deadline.
    public var nextDeadline: MonotonicInstant? { state.withLock { $0.entries.first?.deadline } }

    @discardableResult
    public func schedule(at deadline: MonotonicInstant, _ action: @escaping @Sendable (MonotonicInstant) -> Void) -> TimerToken {
        state.withLock { state in
            state.nextToken += 1
            let token = TimerToken(value: state.nextToken)
            let index = state.entries.firstIndex { $0.deadline > deadline } ?? state.entries.endIndex
            state.entries.insert(Entry(deadline: deadline, token: token, action: action), at: index)
            return token
        }
    }

    @discardableResult
    public func cancel(_ token: TimerToken) -> Bool {
        state.withLock { state in
            guard let index = state.entries.firstIndex(where: { $0.token == token }) else { return false }
            state.entries.remove(at: index)
            return true
        }
    }

    /// Moves time to `target` (never backwards), running what falls due on the way.
    public func advance(to target: MonotonicInstant) {
        while true {
            let due: Entry? = state.withLock { state in
                guard let first = state.entries.first, first.deadline <= target else {
                    state.now = max(state.now, target)
                    return nil
                }
                state.entries.removeFirst()
                state.now = max(state.now, first.deadline)
                return first
            }
            guard let due else { return }
            due.action(due.deadline)
        }
    }

    /// Moves time `seconds` forward.
    public func advance(bySeconds seconds: Double) {
        advance(to: now().advanced(bySeconds: seconds))
    }
}
