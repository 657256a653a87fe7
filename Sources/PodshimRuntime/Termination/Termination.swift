import Dispatch
import Foundation
import PodshimSpec
import PodshimSystem

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
/// on other threads, exits are reported from whichever thread processes them.
public final class Termination: @unchecked Sendable { // mutable state under `lock`
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

    private final class Entry: @unchecked Sendable { // every var is read and written under Termination.lock
        let container: any TerminationTarget
        var schedule: TerminationSchedule
        var token: TimerToken?
        var preStopRunning = false
        var signalled = false
        var killed = false
        var exited = false

        init(container: any TerminationTarget, schedule: TerminationSchedule) {
            self.container = container
            self.schedule = schedule
        }
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var killRecords: [KillRecord] = []
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
    public var records: [KillRecord] { lock.withLock { killRecords } }

    /// Whether `name` is being terminated.
    public func isTerminating(_ name: String) -> Bool { lock.withLock { entries[name] != nil } }

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
            let entry: Entry? = lock.withLock {
                if let existing = entries[container.name] {
                    // A second, shorter request (a force, or a kubelet lowering the grace) wins.
                    guard schedule.deadline < existing.schedule.deadline, !existing.killed else { return nil }
                    if let token = existing.token { clock.cancel(token) }
                    existing.schedule = schedule
                    return existing
                }
                let entry = Entry(container: container, schedule: schedule)
                entries[container.name] = entry
                return entry
            }
            guard let entry else { continue }
            onEvent(.started(container: container.name, graceSeconds: schedule.graceSeconds))
            if schedule.isForced {
                kill(entry, planned: start)
                continue
            }
            arm(entry, at: schedule.deadline)
            if lock.withLock({ entry.preStopRunning }) { continue } // its hook's end sends the signal
            if runPreStop, let hook = container.preStop, !lock.withLock({ entry.signalled }) {
                lock.withLock { entry.preStopRunning = true }
                let budget = schedule.preStopBudget(at: start)
                let finished: @Sendable (String?) -> Void = { [self] problem in
                    onEvent(.preStopFinished(container: container.name, problem: problem))
                    let signal: Bool = lock.withLock {
                        entry.preStopRunning = false
                        return !entry.signalled && !entry.killed && !entry.exited
                    }
                    if signal { sendStopSignal(entry) }
                }
                if case .sleep(let seconds) = hook {
                    // Timed on the clock: no thread sleeps through it.
                    clock.schedule(at: start.advanced(bySeconds: min(Double(seconds), budget))) { _ in finished(nil) }
                } else {
                    preStopRunner(hook, container, budget, finished)
                }
            } else {
                sendStopSignal(entry)
            }
        }
    }

    /// Schedules `entry`'s deadline (replacing any earlier one).
    private func arm(_ entry: Entry, at deadline: MonotonicInstant) {
        lock.withLock {
            if let token = entry.token { clock.cancel(token) }
            entry.token = clock.schedule(at: deadline) { [weak self] now in self?.deadlineReached(entry, at: now) }
        }
    }

    /// Forgets a container's finished termination (it is being restarted).
    public func forget(_ name: String) {
        lock.withLock {
            if let token = entries[name]?.token { clock.cancel(token) }
            entries[name] = nil
        }
    }

    /// The container's main process has exited (seen at `at`): nothing more is sent to it.
    public func exited(_ name: String, at instant: MonotonicInstant? = nil) {
        lock.withLock {
            guard let entry = entries[name] else { return }
            entry.exited = true
            if let token = entry.token { clock.cancel(token) }
            let seen = instant ?? entry.container.exitObservedAt ?? clock.now()
            if let index = killRecords.lastIndex(where: { $0.container == name }), killRecords[index].exitObservedNanoseconds == nil {
                killRecords[index].exitObservedNanoseconds = seen.nanoseconds
            }
        }
    }

    // MARK: - Steps

    /// On the timer thread, at the deadline.
    private func deadlineReached(_ entry: Entry, at now: MonotonicInstant) {
        let step: TerminationSchedule.Step? = lock.withLock {
            guard !entry.exited, !entry.killed else { return nil }
            entry.token = nil
            return entry.schedule.deadlineReached(preStopRunning: entry.preStopRunning)
        }
        switch step {
        case nil:
            return
        case .kill:
            kill(entry, planned: lock.withLock { entry.schedule.deadline })
        case .signalAndKill(let deadline):
            onEvent(.extended(container: entry.container.name, by: TerminationSchedule.preStopExtensionSeconds))
            arm(entry, at: deadline)
            sendStopSignal(entry)
        }
    }

    private func sendStopSignal(_ entry: Entry) {
        let signal = entry.container.stopSignal
        let send: Bool = lock.withLock {
            guard !entry.signalled, !entry.killed, !entry.exited else { return false }
            entry.signalled = true
            return true
        }
        guard send else { return }
        do {
            try entry.container.send(signal)
            onEvent(.stopSignalSent(container: entry.container.name, signal: signal))
        } catch {
            onEvent(.signalFailed(container: entry.container.name, signal: signal, problem: error.description))
        }
    }

    /// SIGKILL through the pidfd now; `cgroup.kill` for anything else in the container right after,
    /// off the timer thread.
    private func kill(_ entry: Entry, planned: MonotonicInstant) {
        let proceed: Bool = lock.withLock {
            guard !entry.killed, !entry.exited else { return false }
            entry.killed = true
            return true
        }
        guard proceed else { return }
        var refused: SystemError?
        do { try entry.container.send(.kill) } catch { refused = error }
        let sent = clock.now()
        let container = entry.container
        let onEvent = self.onEvent
        guard refused == nil else {
            // Not recorded as sent: reported, and cgroup.kill takes the container down instead.
            onEvent(.signalFailed(container: container.name, signal: .kill, problem: refused?.description ?? ""))
            DispatchQueue.global().async { _ = try? container.killStragglers() } // a failure here leaves the exit unseen: the caller's wait times out and says so
            return
        }
        let record = KillRecord(container: container.name, plannedNanoseconds: planned.nanoseconds,
                                sentNanoseconds: sent.nanoseconds, exitObservedNanoseconds: nil,
                                extended: lock.withLock { entry.schedule.extended })
        lock.withLock { killRecords.append(record) }
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
