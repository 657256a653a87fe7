import PodshimCgroups
import PodshimSystem

/// How a container ended, as the CRI reports it.
public struct ContainerTermination: Equatable, Sendable {
    /// Exit code, or 128 + signal.
    public var exitCode: Int32
    /// The signal that killed the main process, if one did.
    public var signal: Signal?
    /// `Completed`, `Error`, `ContainerCannotRun` (later also `OOMKilled`).
    public var reason: String
    /// Why it failed to start, or nil.
    public var message: String?
    /// CPU and memory used, from the container's cgroup; nil without one.
    public var usage: CgroupUsage?

    public init(exitCode: Int32, signal: Signal? = nil, reason: String, message: String? = nil, usage: CgroupUsage? = nil) {
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason
        self.message = message
        self.usage = usage
    }
}

/// A container's lifecycle: created → running → exited, or created → exited when it cannot start.
/// Every other transition is an error that names the state, as containerd's shim does.
public struct ContainerStateMachine: Equatable, Sendable {
    public enum State: Equatable, Sendable {
        case created
        case running(pid: Int32)
        case exited(ContainerTermination)
    }

    public struct TransitionError: Error, Equatable, CustomStringConvertible {
        public var action: String
        public var state: State
        public var description: String { "cannot \(action) a container that is \(state.name)" }
    }

    public private(set) var state: State = .created
    /// A start failure reported before the exit status arrives.
    private var startError: String?

    public init() {}

    public mutating func started(pid: Int32) throws(TransitionError) {
        guard case .created = state else { throw TransitionError(action: "start", state: state) }
        state = .running(pid: pid)
    }

    /// The child reported a setup error; its exit (127) follows through ``exited(_:)``.
    public mutating func failedToStart(_ message: String) throws(TransitionError) {
        guard case .created = state else { throw TransitionError(action: "fail to start", state: state) }
        startError = message
    }

    /// The main process ended. `usage` comes from the container's cgroup, read before it is
    /// removed; an `oom_kill` count above zero makes the reason `OOMKilled`.
    public mutating func exited(_ status: ExitStatus, usage: CgroupUsage? = nil) throws(TransitionError) {
        switch state {
        case .exited:
            throw TransitionError(action: "exit", state: state)
        case .created:
            state = .exited(ContainerTermination(
                exitCode: status.code, reason: "ContainerCannotRun", message: startError ?? "exited before it started",
                usage: usage))
        case .running:
            var signal: Signal?
            if case .signaled(let value, _) = status { signal = value }
            let reason = (usage?.oomKills ?? 0) > 0 ? "OOMKilled" : status.code == 0 ? "Completed" : "Error"
            state = .exited(ContainerTermination(exitCode: status.code, signal: signal, reason: reason, usage: usage))
        }
    }

    public var termination: ContainerTermination? {
        if case .exited(let termination) = state { return termination }
        return nil
    }

    public var isRunning: Bool {
        if case .running = state { return true }
        return false
    }
}

extension ContainerStateMachine.State {
    /// `created`, `running`, `exited`.
    public var name: String {
        switch self {
        case .created: return "created"
        case .running: return "running"
        case .exited: return "exited"
        }
    }
}
