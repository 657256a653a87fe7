import Dispatch
import Foundation
import PodshimSpec
import PodshimSystem
import Synchronization

/// Graceful termination of a set of containers against one deadline on CLOCK_MONOTONIC: preStop
/// hooks, then each container's stop signal, then SIGKILL at the deadline from the
/// ``DeadlineTimer`` thread (the pidfd first, `cgroup.kill` for stragglers right after). The same
/// code stops a `podshim run` pod, a CRI StopContainer and a CRI StopPodSandbox.
///
/// What termination needs of a container: its name, its stop signal and preStop hook, signals
/// through its pidfd and `cgroup.kill` for stragglers. ``Container`` is the real one; unit tests
/// give fakes that record what was sent and when.
public protocol TerminationTarget: AnyObject, Sendable {
    var name: String { get }
    var isRunning: Bool { get }
    var stopSignal: Signal { get }
    var preStop: LifecycleHandler? { get }
    /// When the exit of its main process was seen, if it was.
    var exitObservedAt: MonotonicInstant? { get }
    /// Sends `signal` to the main process. False when it has already exited; a refusal throws.
    @discardableResult
    func send(_ signal: Signal) throws(SystemError) -> Bool
    /// SIGKILL to every other process of the container (`cgroup.kill`).
    func killStragglers() throws(SystemError)
}

/// Runs a preStop `exec` or `httpGet` hook with a budget in seconds and reports its problem (nil
/// when it succeeded) through the completion, from any thread. (A `sleep` hook is timed on the
/// termination's clock and never reaches the runner.)
public typealias PreStopRunner = @Sendable (_ hook: LifecycleHandler, _ target: any TerminationTarget, _ budgetSeconds: Double,
                                            _ done: @escaping @Sendable (String?) -> Void) -> Void

/// Thread-safe: deadlines fire on the clock's thread (the timer thread in production), hooks run
/// on other threads, exits are reported from whichever thread processes them; the state is one
/// `Mutex`, held only to read and flip an entry's flags (signals are sent outside it).
public final class Termination: Sendable {
    /// What happened, in order, for the caller's output and events.
    public enum Event: Sendable {
        case started(container: String, graceSeconds: Double)
        case preStopFinished(container: String, problem: String?)
        case extended(container: String, by: Double)
        case stopSignalSent(container: String, signal: Signal)
        /// The kernel refused a signal (not "already exited"): `problem` says why.
        case signalFailed(container: String, signal: Signal, problem: String)
        case killed(container: String, latenessMicroseconds: Double)
    }

    /// When SIGKILL was planned and sent, and when the exit was seen: the precision record.
    public struct KillRecord: Codable, Equatable, Sendable {
        public var container: String
        public var plannedNanoseconds: UInt64
        public var sentNanoseconds: UInt64
        /// Filled in when the exit is reported.
        public var exitObservedNanoseconds: UInt64?
        public var extended: Bool

        /// Microseconds between the deadline and the SIGKILL leaving podshim.
        public var sendLatenessMicroseconds: Double { Double(Int64(bitPattern: sentNanoseconds &- plannedNanoseconds)) / 1000 }
        /// Microseconds between the deadline and the reaper seeing the process dead.
        public var exitLatenessMicroseconds: Double? {
            exitObservedNanoseconds.map { Double(Int64(bitPattern: $0 &- plannedNanoseconds)) / 1000 }
        }
    }

    /// One container's termination. Stored by name in ``State``; the timer and hook callbacks
    /// carry a ``Key`` (name and generation), so a callback of an earlier, forgotten termination
    /// finds nothing to act on.
    private struct Entry {
        let container: any TerminationTarget
        let generation: UInt64
        var schedule: TerminationSchedule
        var token: TimerToken?
        var preStopRunning = false
        var signalled = false
        var killed = false
        var exited = false
    }

    private struct Key: Hashable, Sendable {
        let name: String
        let generation: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var killRecords: [KillRecord] = []
        var nextGeneration: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The clock every deadline of this termination runs on.
    public let clock: any Timekeeper
    private let preStopRunner: PreStopRunner
    private let onEvent: @Sendable (Event) -> Void

    /// `clock` keeps the deadlines; `preStopRunner` runs exec and httpGet hooks (by default in the
    /// container, ``Termination/hostPreStopRunner(sandbox:)``).
    public init(clock: any Timekeeper = DeadlineTimer.shared, preStopRunner: PreStopRunner? = nil,
                sandbox: @escaping @Sendable () -> ProcessHandle? = { nil },
                onEvent: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.clock = clock
        self.preStopRunner = preStopRunner ?? Self.hostPreStopRunner(sandbox: sandbox)
        self.onEvent = onEvent
    }

    /// The kills so far.
    public var records: [KillRecord] { state.withLock { $0.killRecords } }

    /// Whether `name` is being terminated.
    public func isTerminating(_ name: String) -> Bool { state.withLock { $0.entries[name] != nil } }

    /// Runs `body` on the entry `key` names, if it is still that entry (short, under the lock).
    private func update<T: Sendable>(_ key: Key, _ body: (inout Entry) -> T) -> T? {
        state.withLock { state -> T? in
            guard var entry = state.entries[key.name], entry.generation == key.generation else { return nil }
            let result = body(&entry)
            state.entries[key.name] = entry
            return result
        }
    }

    /// Starts terminating `containers` with `graceSeconds` (0 = kill now; clamped by
    /// ``TerminationSchedule/clampedGrace(_:)``, the one rule for every path). A container already
    /// terminating keeps its earlier deadline unless the new one is earlier.
    public func begin(_ containers: [any TerminationTarget], graceSeconds: Int64, runPreStop: Bool = true) {
        begin(containers, graceSeconds: TerminationSchedule.clampedGrace(graceSeconds), runPreStop: runPreStop)
    }

    private func begin(_ containers: [any TerminationTarget], graceSeconds: Double, runPreStop: Bool) {
        let start = clock.now()
        for container in containers where container.isRunning {
            let schedule = TerminationSchedule(start: start, graceSeconds: graceSeconds)
            let found: (key: Key, stale: TimerToken?)? = state.withLock { state in
                if var existing = state.entries[container.name] {
                    // A second, shorter request (a force, or a kubelet lowering the grace) wins.
                    guard schedule.deadline < existing.schedule.deadline, !existing.killed else { return nil }
                    let stale = existing.token
                    existing.token = nil
                    existing.schedule = schedule
                    state.entries[container.name] = existing
                    return (Key(name: container.name, generation: existing.generation), stale)
                }
                state.nextGeneration += 1
                state.entries[container.name] = Entry(container: container, generation: state.nextGeneration, schedule: schedule)
                return (Key(name: container.name, generation: state.nextGeneration), nil)
            }
            guard let found else { continue }
            let key = found.key
            if let stale = found.stale { clock.cancel(stale) }
            onEvent(.started(container: container.name, graceSeconds: schedule.graceSeconds))
            if schedule.isForced {
                kill(key, planned: start)
                continue
            }
            arm(key, at: schedule.deadline)
            let (hookRunning, signalled) = update(key) { ($0.preStopRunning, $0.signalled) } ?? (false, true)
            if hookRunning { continue } // its hook's end sends the signal
            if runPreStop, let hook = container.preStop, !signalled {
                _ = update(key) { $0.preStopRunning = true }
                let budget = schedule.preStopBudget(at: start)
                let finished: @Sendable (String?) -> Void = { [self] problem in
                    onEvent(.preStopFinished(container: container.name, problem: problem))
                    let signal = update(key) { entry -> Bool in
                        entry.preStopRunning = false
                        return !entry.signalled && !entry.killed && !entry.exited
                    } ?? false
                    if signal { sendStopSignal(key) }
                }
                if case .sleep(let seconds) = hook {
                    // Timed on the clock: no thread sleeps through it.
                    clock.schedule(at: start.advanced(bySeconds: min(Double(seconds), budget))) { _ in finished(nil) }
                } else {
                    preStopRunner(hook, container, budget, finished)
                }
            } else {
                sendStopSignal(key)
            }
        }
    }

    /// Schedules `key`'s deadline (replacing any earlier one).
    private func arm(_ key: Key, at deadline: MonotonicInstant) {
        let token = clock.schedule(at: deadline) { [weak self] now in self?.deadlineReached(key, at: now) }
        let stale = update(key) { entry -> TimerToken? in
            defer { entry.token = token }
            return entry.token
        }
        if stale == nil { clock.cancel(token) } // the entry is gone (forgotten)
        if let old = stale ?? nil { clock.cancel(old) }
    }

    /// Forgets a container's finished termination (it is being restarted).
    public func forget(_ name: String) {
        let token = state.withLock { state -> TimerToken? in
            defer { state.entries[name] = nil }
            return state.entries[name]?.token
        }
        if let token { clock.cancel(token) }
    }

    /// The container's main process has exited (seen at `at`): nothing more is sent to it.
    public func exited(_ name: String, at instant: MonotonicInstant? = nil) {
        let found = state.withLock { state -> (token: TimerToken?, container: any TerminationTarget)? in
            guard var entry = state.entries[name] else { return nil }
            entry.exited = true
            let token = entry.token
            entry.token = nil
            state.entries[name] = entry
            return (token, entry.container)
        }
        guard let found else { return }
        if let token = found.token { clock.cancel(token) }
        let seen = instant ?? found.container.exitObservedAt ?? clock.now()
        state.withLock { state in
            if let index = state.killRecords.lastIndex(where: { $0.container == name }),
               state.killRecords[index].exitObservedNanoseconds == nil {
                state.killRecords[index].exitObservedNanoseconds = seen.nanoseconds
            }
        }
    }

    // MARK: - Steps

    /// On the clock's thread, at the deadline.
    private func deadlineReached(_ key: Key, at now: MonotonicInstant) {
        let step = update(key) { entry -> TerminationSchedule.Step? in
            guard !entry.exited, !entry.killed else { return nil }
            entry.token = nil
            return entry.schedule.deadlineReached(preStopRunning: entry.preStopRunning)
        } ?? nil
        switch step {
        case nil:
            return
        case .kill:
            kill(key, planned: update(key) { $0.schedule.deadline } ?? now)
        case .signalAndKill(let deadline):
            onEvent(.extended(container: key.name, by: TerminationSchedule.preStopExtensionSeconds))
            arm(key, at: deadline)
            sendStopSignal(key)
        }
    }

    private func sendStopSignal(_ key: Key) {
        let target = update(key) { entry -> (any TerminationTarget)? in
            guard !entry.signalled, !entry.killed, !entry.exited else { return nil }
            entry.signalled = true
            return entry.container
        } ?? nil
        guard let target else { return }
        let signal = target.stopSignal
        do {
            try target.send(signal)
            onEvent(.stopSignalSent(container: target.name, signal: signal))
        } catch {
            onEvent(.signalFailed(container: target.name, signal: signal, problem: error.description))
        }
    }

    /// SIGKILL through the pidfd now; `cgroup.kill` for anything else in the container right after,
    /// off the timer thread.
    private func kill(_ key: Key, planned: MonotonicInstant) {
        let found = update(key) { entry -> (container: any TerminationTarget, extended: Bool)? in
            guard !entry.killed, !entry.exited else { return nil }
            entry.killed = true
            return (entry.container, entry.schedule.extended)
        } ?? nil
        guard let found else { return }
        let container = found.container
        var refused: SystemError?
        do { try container.send(.kill) } catch { refused = error }
        let sent = clock.now()
        let onEvent = self.onEvent
        guard refused == nil else {
            // Not recorded as sent: reported, and cgroup.kill takes the container down instead.
            onEvent(.signalFailed(container: container.name, signal: .kill, problem: refused?.description ?? ""))
            DispatchQueue.global().async { _ = try? container.killStragglers() } // a failure here leaves the exit unseen: the caller's wait times out and says so
            return
        }
        let record = KillRecord(container: container.name, plannedNanoseconds: planned.nanoseconds,
                                sentNanoseconds: sent.nanoseconds, exitObservedNanoseconds: nil,
                                extended: found.extended)
        state.withLock { $0.killRecords.append(record) }
        // Everything else leaves the timer thread: the next container's SIGKILL may be due too.
        DispatchQueue.global().async {
            _ = try? container.killStragglers() // stragglers only: the main process has its SIGKILL
            onEvent(.killed(container: container.name, latenessMicroseconds: record.sendLatenessMicroseconds))
        }
    }

    /// The production preStop runner: `exec` in the container's namespaces, `httpGet` from the
    /// pod's network namespace (`sandbox` is its pause), each bounded by the budget, on a
    /// Dispatch worker.
    public static func hostPreStopRunner(sandbox: @escaping @Sendable () -> ProcessHandle?) -> PreStopRunner {
        { hook, target, budget, done in
            DispatchQueue.global().async {
                guard let container = target as? Container else { return done("preStop: not a podshim container") }
                done(runHook(hook, in: container, sandbox: sandbox(), budgetSeconds: budget))
            }
        }
    }

    /// Runs an exec or httpGet preStop hook to its end or its budget. Returns a problem, or nil
    /// when it succeeded.
    private static func runHook(_ hook: LifecycleHandler, in container: Container, sandbox: ProcessHandle?,
                                budgetSeconds: Double) -> String? {
        switch hook {
        case .exec(let command):
            do {
                let result = try ContainerExec.run(in: container, argv: command, timeoutSeconds: max(0.001, budgetSeconds))
                if result.timedOut { return "preStop exec did not finish in time" }
                return result.exitCode == 0 ? nil : "preStop exec exited \(result.exitCode)"
            } catch {
                return "preStop exec: \(error)"
            }
        case .sleep:
            return nil // timed on the termination's clock, never run here
        case .httpGet(let action):
            guard let port = action.port.resolve(in: container.ports) else { return "preStop httpGet: unknown port" }
            guard let sandbox else { return "preStop httpGet: the pod has no sandbox" }
            switch PodNetwork.httpGet(sandbox: sandbox, host: action.host ?? "127.0.0.1", port: port, path: action.path,
                                      headers: action.headers, timeoutSeconds: max(0.001, budgetSeconds)) {
            case .success(let status):
                return (200..<400).contains(status) ? nil : "preStop httpGet: status \(status)"
            case .failure(let failure):
                return "preStop httpGet: \(failure)"
            }
        }
    }
}
