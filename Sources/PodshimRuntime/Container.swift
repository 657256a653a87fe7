import Foundation
import PodshimCgroups
import PodshimSpec
import PodshimSystem
import PodshimProcess

/// One container of a pod: its plan, its process and its state.
///
/// State transitions are made by the pod's controlling thread only (start, then the exit event it
/// reads from the pod's queue), so they always happen in order; the lock protects readers.
public final class Container: TerminationTarget, @unchecked Sendable { // mutable state under `lock`; set-up fields are written before it is shared
    public let index: Int
    public let name: String
    public let plan: ProcessPlan
    /// The container's cgroup limits.
    public let resources: CgroupResources
    /// The container's leaf cgroup, once the pod's cgroups exist.
    public internal(set) var cgroup: Cgroup?
    /// Where its output goes in CRI log format; nil = the pod's default `<logs>/<pod>/<name>/0.log`.
    public let logPath: String?
    /// The signal that asks it to stop (`lifecycle.stopSignal`, SIGTERM by default).
    public var stopSignal: Signal = .terminate
    /// `lifecycle.preStop`.
    public var preStop: LifecycleHandler?
    /// Its declared ports (for a preStop httpGet with a named port).
    public var ports: [ContainerPort] = []

    private let lock = NSLock()
    private var machine = ContainerStateMachine()
    private var processHandle: ProcessHandle?
    private var cloned = false
    var output: ContainerOutput?

    /// The output pipes' reader, while the container runs (so its log can be reopened).
    public var outputLog: ContainerOutput? { output }
    init(index: Int, name: String, plan: ProcessPlan, resources: CgroupResources, logPath: String? = nil) {
        self.index = index
        self.logPath = logPath
        self.name = name
        self.plan = plan
        self.resources = resources
    }

    public var state: ContainerStateMachine.State { lock.withLock { machine.state } }
    public var termination: ContainerTermination? { lock.withLock { machine.termination } }
    public var isRunning: Bool { lock.withLock { machine.isRunning } }
    /// The main process while the container runs (and until its exit is processed).
    public var process: ProcessHandle? { lock.withLock { processHandle } }
    /// A process was cloned for the container and its exit has not been processed yet — also
    /// after a failed start, whose child reports, exits 127 and must still be accounted for.
    public var isAwaitingExit: Bool { lock.withLock { cloned && machine.termination == nil } }

    /// When the reaper saw the main process exit (for the termination timing record).
    public var exitObservedAt: MonotonicInstant? { lock.withLock { exitSeen } }
    private var exitSeen: MonotonicInstant?

    func markExitObserved(at instant: MonotonicInstant) {
        lock.withLock { if exitSeen == nil { exitSeen = instant } }
    }

    package func markCloned() {
        lock.withLock { cloned = true }
    }

    /// An fd on the container's mount namespace, held while it runs: when its last process dies
    /// the kernel then does not unmount the overlay and every other mount in the exit path (which
    /// delays the death podshim observes by milliseconds per container), but when podshim closes
    /// this fd after processing the exit.
    private var mountNamespace: Int32 = -1

    func holdMountNamespace(of pid: pid_t) {
        let fd = open("/proc/\(pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
        lock.withLock {
            if mountNamespace >= 0 { close(mountNamespace) }
            mountNamespace = fd
        }
    }

    private func releaseMountNamespace() {
        let fd: Int32 = lock.withLock {
            defer { mountNamespace = -1 }
            return mountNamespace
        }
        if fd >= 0 { close(fd) }
    }

    deinit { releaseMountNamespace() }

    /// Wall-clock times of the current attempt, for status (nanoseconds since the epoch).
    public var startedAtWall: Int64? { lock.withLock { startedWall } }
    public var finishedAtWall: Int64? { lock.withLock { finishedWall } }
    private var startedWall: Int64?
    private var finishedWall: Int64?

    package func markStarted(_ process: ProcessHandle) {
        lock.withLock {
            startedWall = WallClock.nanoseconds()
            finishedWall = nil
            processHandle = process
            try? machine.started(pid: process.pid) // an exit recorded first (a fast exit) stands
        }
    }

    func markFailedToStart(_ message: String) {
        lock.withLock { try? machine.failedToStart(message) } // only a container not yet started can fail to start; a later state stands
    }

    /// The main process ended: read the cgroup's usage (and OOM kills), then take down whatever
    /// else still runs in the container's cgroup (processes that escaped its init).
    public func markExited(_ status: ExitStatus) {
        let usage = cgroup.map(CgroupUsage.read)
        _ = try? cgroup?.killAll() // best effort: stragglers die with the cgroup's removal, which reports failures
        lock.withLock {
            try? machine.exited(status, usage: usage) // already exited: the first exit recorded stands
            processHandle = nil
            finishedWall = WallClock.nanoseconds()
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
    public var restartCount: Int { lock.withLock { restarts } }
    private var restarts = 0
    /// Its probes (`startupProbe`, `livenessProbe`, `readinessProbe`).
    public var probes: [ProbeKind: Probe] = [:]

    /// Makes an exited container startable again, as a new attempt (its previous termination is
    /// returned; the caller gives it a fresh writable layer).
    package func prepareForRestart() -> ContainerTermination? {
        let previous: ContainerTermination? = lock.withLock {
            let termination = machine.termination
            machine = ContainerStateMachine()
            processHandle = nil
            cloned = false
            exitSeen = nil
            restarts += 1
            return termination
        }
        output = nil
        return previous
    }

    /// Takes the stop signal, preStop hook and ports from the container's spec.
    func configure(from spec: ContainerSpec) {
        stopSignal = spec.lifecycle.stopSignal.flatMap { Signal(parsing: $0) } ?? .terminate
        preStop = spec.lifecycle.preStop
        ports = spec.ports
        probes = spec.probes
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
