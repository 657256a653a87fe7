import PodshimSpec
import PodshimSystem

/// Where supervision meets the kernel: starting a container's next attempt and running one probe.
/// ``PodLauncher`` (the pod's spawner, the real probes) in production; unit tests give a fake that
/// starts nothing, so the restart policy, back-off, probes and readiness of ``Supervisor`` are walked
/// on a ``ManualClock`` without root.
public protocol Launcher: Sendable {
    /// Starts `container`'s next attempt (it has exited) on a fresh writable layer.
    func restart(_ container: Container, in pod: Pod, sink: @escaping LineSink) throws(PodError)
    /// Runs `probe` once against `container` (blocking; called on a Dispatch worker).
    func probe(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String)
}

/// The production launcher: ``Pod/restart(_:sink:)`` and ``ProbeRunner``.
public struct PodLauncher: Launcher {
    public init() {}

    public func restart(_ container: Container, in pod: Pod, sink: @escaping LineSink) throws(PodError) {
        try pod.restart(container, sink: sink)
    }

    public func probe(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String) {
        ProbeRunner.run(probe, in: container, sandbox: sandbox)
    }
}
