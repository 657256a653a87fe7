import Dispatch
import Foundation
import PodshimSpec
import PodshimSystem

/// Graceful termination of a set of containers against one deadline on CLOCK_MONOTONIC: preStop
/// hooks, then each container's stop signal, then SIGKILL at the deadline from the
/// ``DeadlineTimer`` thread (the pidfd first, `cgroup.kill` for stragglers right after). The same
/// code stops a `podshim run` pod, a CRI StopContainer and a CRI StopPodSandbox.
///
/// Thread-safe: the deadline fires on the timer thread, hooks run on their own threads, exits
/// are reported from whichever thread processes them.
public final class Termination: @unchecked Sendable {
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

    private final class Entry {
        let container: Container
        var schedule: TerminationSchedule
        var token: DeadlineTimer.Token?
        var preStopRunning = false
        var signalled = false
        var killed = false
        var exited = false

        init(container: Container, schedule: TerminationSchedule) {
            self.container = container
            self.schedule = schedule
        }
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var killRecords: [KillRecord] = []
    private let timer: DeadlineTimer
    private let sandbox: @Sendable () -> ProcessHandle?
    private let onEvent: @Sendable (Event) -> Void

    /// `sandbox` gives the pause process (for a preStop httpGet in the pod's network).
    public init(timer: DeadlineTimer = .shared, sandbox: @escaping @Sendable () -> ProcessHandle? = { nil },
                onEvent: @escaping @Sendable (Event) -> Void = { _ in }) {
        self.timer = timer
        self.sandbox = sandbox
        self.onEvent = onEvent
    }

    /// The kills so far.
    public var records: [KillRecord] { lock.withLock { killRecords } }

    /// Whether `name` is being terminated.
    public func isTerminating(_ name: String) -> Bool { lock.withLock { entries[name] != nil } }

    /// Starts terminating `containers` with `graceSeconds` (0 = kill now). A container already
    /// terminating keeps its earlier, shorter deadline unless the new one is earlier.
    public func begin(_ containers: [Container], graceSeconds: Double, runPreStop: Bool = true) {
        let start = MonotonicInstant.now()
        for container in containers where container.isRunning {
            let schedule = TerminationSchedule(start: start, graceSeconds: graceSeconds)
            let entry: Entry? = lock.withLock {
                if let existing = entries[container.name] {
                    // A second, shorter request (a force, or a kubelet lowering the grace) wins.
                    guard schedule.deadline < existing.schedule.deadline, !existing.killed else { return nil }
                    if let token = existing.token { timer.cancel(token) }
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
            lock.withLock {
                entry.token = timer.schedule(at: schedule.deadline) { [weak self] now in self?.deadlineReached(entry, at: now) }
            }
            if lock.withLock({ entry.preStopRunning }) { continue } // its hook's end sends the signal
            if runPreStop, let hook = container.preStop, !lock.withLock({ entry.signalled }) {
                lock.withLock { entry.preStopRunning = true }
                let budget = schedule.preStopBudget(at: start)
                DispatchQueue.global().async { [self] in
                    let problem = runHook(hook, in: container, budgetSeconds: budget)
                    onEvent(.preStopFinished(container: container.name, problem: problem))
                    let signal: Bool = lock.withLock {
                        entry.preStopRunning = false
                        return !entry.signalled && !entry.killed && !entry.exited
                    }
                    if signal { sendStopSignal(entry) }
                }
            } else {
                sendStopSignal(entry)
            }
        }
    }

    /// Forgets a container's finished termination (it is being restarted).
    public func forget(_ name: String) {
        lock.withLock {
            if let token = entries[name]?.token { timer.cancel(token) }
            entries[name] = nil
        }
    }

    /// The container's main process has exited (seen at `at`): nothing more is sent to it.
    public func exited(_ name: String, at instant: MonotonicInstant? = nil) {
        lock.withLock {
            guard let entry = entries[name] else { return }
            entry.exited = true
            if let token = entry.token { timer.cancel(token) }
            let seen = instant ?? entry.container.exitObservedAt ?? MonotonicInstant.now()
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
            lock.withLock {
                entry.token = timer.schedule(at: deadline) { [weak self] now in self?.deadlineReached(entry, at: now) }
            }
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
        let sent = MonotonicInstant.now()
        let container = entry.container
        let onEvent = self.onEvent
        guard refused == nil else {
            // Not recorded as sent: reported, and cgroup.kill takes the container down instead.
            onEvent(.signalFailed(container: container.name, signal: .kill, problem: refused?.description ?? ""))
            DispatchQueue.global().async { _ = try? container.cgroup?.killAll() } // a failure here leaves the exit unseen: the caller's wait times out and says so
            return
        }
        let record = KillRecord(container: container.name, plannedNanoseconds: planned.nanoseconds,
                                sentNanoseconds: sent.nanoseconds, exitObservedNanoseconds: nil,
                                extended: lock.withLock { entry.schedule.extended })
        lock.withLock { killRecords.append(record) }
        // Everything else leaves the timer thread: the next container's SIGKILL may be due too.
        DispatchQueue.global().async {
            _ = try? container.cgroup?.killAll() // stragglers only: the main process has its SIGKILL
            onEvent(.killed(container: container.name, latenessMicroseconds: record.sendLatenessMicroseconds))
        }
    }

    /// Runs a preStop hook to its end or its budget. Returns a problem, or nil when it succeeded.
    private func runHook(_ hook: LifecycleHandler, in container: Container, budgetSeconds: Double) -> String? {
        switch hook {
        case .exec(let command):
            do {
                let result = try ContainerExec.run(in: container, argv: command, timeoutSeconds: max(0.001, budgetSeconds))
                if result.timedOut { return "preStop exec did not finish in time" }
                return result.exitCode == 0 ? nil : "preStop exec exited \(result.exitCode)"
            } catch {
                return "preStop exec: \(error)"
            }
        case .sleep(let seconds):
            Thread.sleep(forTimeInterval: min(Double(seconds), budgetSeconds))
            return nil
        case .httpGet(let action):
            guard let port = action.port.resolve(in: container.ports) else { return "preStop httpGet: unknown port" }
            guard let sandbox = sandbox() else { return "preStop httpGet: the pod has no sandbox" }
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
