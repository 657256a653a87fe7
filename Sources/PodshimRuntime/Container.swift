import Foundation
import Synchronization
import PodshimCgroups
import PodshimSpec
import PodshimSystem
import PodshimProcess

/// One container of a pod: its plan, its process and its state.
///
/// State transitions are made by the pod's controlling task only (start, then the exit event it
/// reads from the pod's queue), so they always happen in order; `state` lets any thread read.
public final class Container: TerminationTarget, Sendable {
    public let index: Int
    public let name: String
    public let plan: ProcessPlan
    /// The container's cgroup limits.
    public let resources: CgroupResources
    /// Where its output goes in CRI log format; nil = the pod's default `<logs>/<pod>/<name>/0.log`.
    public let logPath: String?
    /// The signal that asks it to stop (`lifecycle.stopSignal`, SIGTERM by default).
    public let stopSignal: Signal
    /// `lifecycle.preStop`.
    public let preStop: LifecycleHandler?
    /// Its declared ports (for a preStop httpGet with a named port).
    public let ports: [ContainerPort]
    /// Its probes (`startupProbe`, `livenessProbe`, `readinessProbe`).
    public let probes: [ProbeKind: Probe]
    /// `stdin`, `stdinOnce` and `tty` (see ``ContainerInput``).
    public let stdin: Bool
    public let stdinOnce: Bool
    public let tty: Bool

    private struct State {
        var machine = ContainerStateMachine()
        var process: ProcessHandle?
        var cloned = false
        var output: ContainerOutput?
        var input: ContainerInput?
        var cgroup: Cgroup?
        var exitSeen: MonotonicInstant?
        /// An fd on the container's mount namespace, held while it runs (see ``holdMountNamespace(of:)``).
        var mountNamespace: Int32 = -1
        var startedWall: Int64?
        var finishedWall: Int64?
        var restarts = 0
        var keeperFDs: [Int32] = []
        var startProfile: StartProfile?
    }

    private let guarded = Mutex(State())

    /// A container of `spec` (its stop signal, preStop hook, ports and probes).
    init(index: Int, spec: ContainerSpec, plan: ProcessPlan, resources: CgroupResources, logPath: String? = nil) {
        self.index = index
        self.logPath = logPath
        self.name = spec.name
        self.plan = plan
        self.resources = resources
        stopSignal = spec.lifecycle.stopSignal.flatMap { Signal(parsing: $0) } ?? .terminate
        preStop = spec.lifecycle.preStop
        ports = spec.ports
        probes = spec.probes
        stdin = spec.stdin
        stdinOnce = spec.stdinOnce
        tty = spec.tty
    }

    /// The container's leaf cgroup, once the pod's cgroups exist.
    public internal(set) var cgroup: Cgroup? {
        get { guarded.withLock { $0.cgroup } }
        set { guarded.withLock { $0.cgroup = newValue } }
    }

    /// Its stdin (a pipe's write end, or its terminal), while it runs and until it is closed for
    /// good (`stdinOnce`); nil for a container without stdin or tty.
    public var input: ContainerInput? {
        get { guarded.withLock { $0.input } }
        set { guarded.withLock { $0.input = newValue } }
    }

    /// The output pipes' reader, while the container runs (so its log can be reopened).
    public var outputLog: ContainerOutput? { output }
    var output: ContainerOutput? {
        get { guarded.withLock { $0.output } }
        set { guarded.withLock { $0.output = newValue } }
    }

    public var state: ContainerStateMachine.State { guarded.withLock { $0.machine.state } }
    public var termination: ContainerTermination? { guarded.withLock { $0.machine.termination } }
    public var isRunning: Bool { guarded.withLock { $0.machine.isRunning } }
    /// The main process while the container runs (and until its exit is processed).
    public var process: ProcessHandle? { guarded.withLock { $0.process } }
    /// A process was cloned for the container and its exit has not been processed yet — also
    /// after a failed start, whose child reports, exits 127 and must still be accounted for.
    public var isAwaitingExit: Bool { guarded.withLock { $0.cloned && $0.machine.termination == nil } }

    /// When the event loop saw the main process exit (for the termination timing record).
    public var exitObservedAt: MonotonicInstant? { guarded.withLock { $0.exitSeen } }

    func markExitObserved(at instant: MonotonicInstant) {
        guarded.withLock { if $0.exitSeen == nil { $0.exitSeen = instant } }
    }

    package func markCloned() {
        guarded.withLock { $0.cloned = true }
    }

    /// Holds an fd on the container's mount namespace while it runs: when its last process dies
    /// the kernel then does not unmount the overlay and every other mount in the exit path (which
    /// delays the death podshim observes by milliseconds per container), but when podshim closes
    /// this fd after processing the exit.
    func holdMountNamespace(of pid: pid_t) {
        let fd = open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        let previous = guarded.withLock { state in
            defer { state.mountNamespace = fd }
            return state.mountNamespace
        }
        if previous >= 0 { close(previous) }
    }

    private func releaseMountNamespace() {
        let fd: Int32 = guarded.withLock { state in
            defer { state.mountNamespace = -1 }
            return state.mountNamespace
        }
        if fd >= 0 { close(fd) }
    }

    deinit { releaseMountNamespace() }

    /// The numbers of the fds the pod's pause process holds for this attempt: its pidfd first,
    /// then its output pipes' read ends (see ``FDKeeper``); empty when none.
    public var keeperFDs: [Int32] {
        get { guarded.withLock { $0.keeperFDs } }
        set { guarded.withLock { $0.keeperFDs = newValue } }
    }

    /// Where the last start's time went in ``Pod/start(_:sink:)`` (the spawn and the child's setup).
    public internal(set) var startProfile: StartProfile? {
        get { guarded.withLock { $0.startProfile } }
        set { guarded.withLock { $0.startProfile = newValue } }
    }

    /// Wall-clock times of the current attempt, for status (nanoseconds since the epoch).
    public var startedAtWall: Int64? { guarded.withLock { $0.startedWall } }
    public var finishedAtWall: Int64? { guarded.withLock { $0.finishedWall } }

    package func markStarted(_ process: ProcessHandle) {
        guarded.withLock { state in
            state.startedWall = WallClock.nanoseconds()
            state.finishedWall = nil
            state.process = process
            try? state.machine.started(pid: process.pid) // an exit recorded first (a fast exit) stands
        }
    }

    func markFailedToStart(_ message: String) {
        guarded.withLock { try? $0.machine.failedToStart(message) } // only a container not yet started can fail to start; a later state stands
    }

    /// The main process ended: read the cgroup's usage (and OOM kills), then take down whatever
    /// else still runs in the container's cgroup (processes that escaped its init).
    public func markExited(_ status: ExitStatus) {
        let cgroup = self.cgroup
        let usage = cgroup.map(CgroupUsage.read)
        _ = try? cgroup?.killAll() // best effort: stragglers die with the cgroup's removal, which reports failures
        guarded.withLock { state in
            try? state.machine.exited(status, usage: usage) // already exited: the first exit recorded stands
            state.process = nil
            state.finishedWall = WallClock.nanoseconds()
        }
        releaseMountNamespace()
    }

    /// Sends `signal` to the main process through its pidfd. False when it is not running (or
    /// already gone); a signal the kernel refused is thrown, never taken as sent.
    @discardableResult
    public func send(_ signal: Signal) throws(SystemError) -> Bool {
        guard let process else { return false }
        return try process.send(signal)
    }

    /// How many times it was restarted (the attempt number of its current run).
    public var restartCount: Int { guarded.withLock { $0.restarts } }

    /// Re-adoption: the attempt the adopted process runs as (found from its log files).
    package func adoptAttempt(_ attempt: Int) {
        guarded.withLock { $0.restarts = attempt }
    }

    /// Makes an exited container startable again, as a new attempt (its previous termination is
    /// returned; the caller gives it a fresh writable layer).
    package func prepareForRestart() -> ContainerTermination? {
        guarded.withLock { state in
            let termination = state.machine.termination
            state.machine = ContainerStateMachine()
            state.process = nil
            state.cloned = false
            state.exitSeen = nil
            state.restarts += 1
            state.output = nil
            state.input = nil
            return termination
        }
    }

    /// `cgroup.kill` on the container's leaf cgroup (nothing when it has none).
    public func killStragglers() throws(SystemError) {
        try cgroup?.killAll()
    }

    /// SIGKILL to the main process and, through `cgroup.kill`, to every process of the container.
    public func kill() {
        // A SIGKILL the kernel refuses is covered by the cgroup.kill right after.
        _ = try? send(.kill)
        _ = try? cgroup?.killAll() // best effort: the cgroup's removal kills again and reports failures
    }
}
