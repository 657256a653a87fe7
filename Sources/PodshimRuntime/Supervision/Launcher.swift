import PodshimSpec
import PodshimSystem

/// Where the lifecycle core meets process creation: starting a pod's pause and its containers,
/// killing the pause, restarting a container, running one probe. ``PodLauncher`` (the pod's
/// spawner, the real probes) in production; unit tests give a fake that starts nothing, so the
/// restart policy, back-off and probes of ``Supervisor`` and the CRI sandbox logic are walked on a
/// ``ManualClock`` without root.
public protocol Launcher: Sendable {
    /// Starts the pod's pause process (its namespaces); the pod has been prepared.
    func startSandbox(of pod: Pod) throws(PodError)
    /// SIGKILL to the pause process; its exit comes back as the pod's `sandboxExited` event.
    func killSandbox(of pod: Pod)
    /// Starts a created container; its exit comes back as the pod's `containerExited` event.
    func start(_ container: Container, in pod: Pod, sink: LineSink?) throws(PodError)
    /// Starts `container`'s next attempt (it has exited) on a fresh writable layer.
    func restart(_ container: Container, in pod: Pod, sink: @escaping LineSink) throws(PodError)
    /// Runs `probe` once against `container` (blocking; called on a Dispatch worker).
    func probe(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String)
}

/// The production launcher: ``Pod/restart(_:sink:)`` and ``ProbeRunner``.
public struct PodLauncher: Launcher {
    public init() {}

    public func startSandbox(of pod: Pod) throws(PodError) {
        try pod.startSandbox()
    }

    public func killSandbox(of pod: Pod) {
        pod.killSandbox()
    }

    public func start(_ container: Container, in pod: Pod, sink: LineSink?) throws(PodError) {
        try pod.start(container, sink: sink)
    }

    public func restart(_ container: Container, in pod: Pod, sink: @escaping LineSink) throws(PodError) {
        try pod.restart(container, sink: sink)
    }

    public func probe(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String) {
        ProbeRunner.run(probe, in: container, sandbox: sandbox)
    }
}
