import Synchronization
import Foundation
import PodshimCRI
import PodshimRuntime
import PodshimSystem

/// A container the daemon manages: its durable record and, while podshim can act on it, the
/// runtime container (plan, process, cgroup).
final class ManagedContainer: @unchecked Sendable { // its vars under its sandbox's `lock`
    let id: String
    let sandboxID: String
    let config: Runtime_V1_ContainerConfig
    /// The runtime container; its layout name is ``id``.
    let runtime: Container
    let exited = ExitSignal()
    /// Guarded by the sandbox's lock.
    var record: ContainerRecord
    /// The last signal podshim sent to stop it (guarded by the sandbox's lock).
    var signalSent: Signal?
    /// The resources in force: the config's, then each UpdateContainerResources (sandbox's lock).
    var resources: Runtime_V1_LinuxContainerResources
    /// The previous CPU sample (ns since the epoch, usage ns), for usage_nano_cores (sandbox's lock).
    var lastCPUSample: (time: Int64, usage: UInt64)?
    /// Where the last StartContainer's time went, request to reply (sandbox's lock): ContainerStatus's
    /// verbose `startProfile`.
    var startProfile: StartProfile?

    init(record: ContainerRecord, config: Runtime_V1_ContainerConfig, runtime: Container) {
        // Written by jsonString() of this very message; a torn record fails to load as a whole (reported).
        resources = record.resources.flatMap { try? Runtime_V1_LinuxContainerResources(jsonString: $0) }
            ?? config.linux.resources
        id = record.id
        sandboxID = record.sandboxID
        self.config = config
        self.runtime = runtime
        self.record = record
        if record.state == .exited { exited.fire() }
    }

    var name: String { config.metadata.name }
    var attempt: UInt32 { config.metadata.attempt }

}

/// A pod sandbox the daemon manages. Every change to it or its containers happens under ``lock``,
/// including the processing of exits (on the sandbox's event thread), so a start and the exit of
/// the process it started are always seen in that order.
final class ManagedSandbox: @unchecked Sendable { // its vars under `lock`
    let id: String
    let config: Runtime_V1_PodSandboxConfig
    let pod: Pod
    let lock = NSLock()
    let pauseExited = ExitSignal()
    /// Guarded by ``lock``.
    var record: SandboxRecord
    /// Guarded by ``lock``, in creation order.
    var containers: [ManagedContainer] = []
    /// Set once RemovePodSandbox took it apart; its event task is then cancelled.
    var removed = false
    /// The task consuming the pod's events (guarded by ``lock``).
    var eventTask: Task<Void, Never>?
    /// The previous CPU sample of the pod cgroup (guarded by ``lock``).
    var lastCPUSample: (time: Int64, usage: UInt64)?
    /// Graceful stops of its containers: one deadline each, SIGKILL from the deadline thread.
    let termination: Termination
    /// Where the termination's events go (the manager sets the handler once the sandbox exists).
    let terminationEvents: TerminationEvents

    init(record: SandboxRecord, config: Runtime_V1_PodSandboxConfig, pod: Pod) {
        id = record.id
        self.config = config
        self.pod = pod
        self.record = record
        let events = TerminationEvents()
        terminationEvents = events
        termination = Termination(sandbox: { [pod] in pod.sandbox }, onEvent: { events.deliver($0) })
    }

    var name: String { config.metadata.name }

    func container(_ id: String) -> ManagedContainer? {
        containers.first { $0.id == id }
    }
}

/// Nanoseconds since the epoch, as the CRI reports times.
func nowNanoseconds() -> Int64 { WallClock.nanoseconds() }

/// 64 lowercase hex digits, as containerd's ids.
func newIdentifier() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
}

/// Forwards a ``Termination``'s events to a handler set after the sandbox is built.
final class TerminationEvents: Sendable {
    private let handler = Mutex<(@Sendable (Termination.Event) -> Void)?>(nil)

    func set(_ handler: @escaping @Sendable (Termination.Event) -> Void) {
        self.handler.withLock { $0 = handler }
    }

    func deliver(_ event: Termination.Event) {
        handler.withLock { $0 }?(event)
    }
}
