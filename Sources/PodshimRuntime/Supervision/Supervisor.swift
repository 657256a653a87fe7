import Dispatch
import PodshimSpec
import PodshimSystem

/// Probes, readiness and restarts of a pod's containers, driven by the pod's event loop (every
/// method is called from that one thread; probe runs happen on other threads and come back as
/// `probeFinished` events).
///
/// - The startup probe gates the others; liveness and readiness start once it has succeeded.
/// - A failed liveness (or startup) probe stops the container gracefully, with the pod's grace
///   period; the restart policy then decides, as for any exit.
/// - A restart waits for the crash-loop back-off (``RestartBackoff``) and starts a new attempt on a
///   fresh writable layer.
/// - A container without a readiness probe is ready while it runs (after its startup probe);
///   the pod is ready when every container is.
final class Supervisor {
    private struct State {
        var trackers: [ProbeKind: ProbeTracker] = [:]
        var inFlight: Set<ProbeKind> = []
        var startedAt = MonotonicInstant(nanoseconds: 0)
        var startupPassed = true
        var ready = false
        var backoff = RestartBackoff()
        var restartAt: MonotonicInstant?
    }

    private let pod: Pod
    private let termination: Termination
    private let printer: TerminalPrinter
    private let launcher: any Launcher
    private var states: [String: State] = [:]
    private var podReady = false
    /// Probe periods and back-off run on the termination's clock.
    private var clock: any Timekeeper { termination.clock }

    init(pod: Pod, termination: Termination, printer: TerminalPrinter, launcher: any Launcher = PodLauncher()) {
        self.pod = pod
        self.termination = termination
        self.printer = printer
        self.launcher = launcher
    }

    /// `container` has just started (first run or restart): its probes start over.
    func started(_ container: Container) {
        var state = states[container.name] ?? State()
        let now = clock.now()
        state.startedAt = now
        state.inFlight = []
        state.restartAt = nil
        state.trackers = [:]
        for (kind, probe) in container.probes { state.trackers[kind] = ProbeTracker(kind: kind, probe: probe, containerStarted: now) }
        state.startupPassed = container.probes[.startup] == nil
        states[container.name] = state
        setReady(container, state.startupPassed && container.probes[.readiness] == nil, reason: nil)
    }

    func isReady(_ name: String) -> Bool { states[name]?.ready == true }
    var isPodReady: Bool { podReady }

    var hasPendingRestarts: Bool { states.values.contains { $0.restartAt != nil } }

    func isRestartPending(_ name: String) -> Bool { states[name]?.restartAt != nil }

    func cancelRestarts() {
        for name in states.keys { states[name]?.restartAt = nil }
    }

    /// The pod is terminating: out of readiness at once, no more restarts.
    func terminating() {
        cancelRestarts()
        for container in pod.containers { setReady(container, false, reason: "terminating") }
    }

    /// When the loop must wake up next: a probe to run or a restart to make.
    var nextWakeUp: MonotonicInstant? {
        var next: MonotonicInstant?
        func consider(_ instant: MonotonicInstant) { next = next.map { min($0, instant) } ?? instant }
        for container in pod.containers {
            guard let state = states[container.name] else { continue }
            if let restartAt = state.restartAt { consider(restartAt) }
            guard container.isRunning else { continue }
            for kind in activeKinds(state) where !state.inFlight.contains(kind) {
                if let tracker = state.trackers[kind] { consider(tracker.nextRun) }
            }
        }
        return next
    }

    private func activeKinds(_ state: State) -> [ProbeKind] {
        state.startupPassed ? [.liveness, .readiness] : [.startup]
    }

    /// A restart or a probe run is due now.
    var hasWorkDue: Bool { nextWakeUp.map { $0 <= clock.now() } ?? false }

    /// Restarts and probe runs that are due.
    func runDue(sink: @escaping LineSink) {
        let now = clock.now()
        for container in pod.containers {
            guard var state = states[container.name] else { continue }
            if let restartAt = state.restartAt, restartAt <= now {
                state.restartAt = nil
                states[container.name] = state
                termination.forget(container.name)
                do {
                    try launcher.restart(container, in: pod, sink: sink)
                    printer.message("container \(container.name) restarted (restart \(container.restartCount)): pid \(container.process?.pid ?? 0)")
                    started(container)
                } catch {
                    printer.message("container \(container.name): restart failed: \(error)")
                }
                continue
            }
            guard container.isRunning, !termination.isTerminating(container.name) else { continue }
            for kind in activeKinds(state) where !state.inFlight.contains(kind) {
                guard let tracker = state.trackers[kind], tracker.nextRun <= now else { continue }
                state.inFlight.insert(kind)
                let probe = tracker.probe
                let events = pod.events
                let sandbox = pod.sandbox
                let name = container.name
                let launcher = self.launcher
                DispatchQueue.global().async {
                    let (success, detail) = launcher.probe(probe, in: container, sandbox: sandbox)
                    events.post(.probeFinished(name: name, kind: kind, success: success, detail: detail))
                }
            }
            states[container.name] = state
        }
    }

    func probeFinished(_ container: Container, kind: ProbeKind, success: Bool, detail: String) {
        guard var state = states[container.name] else { return }
        state.inFlight.remove(kind)
        // A container being stopped (liveness failure, pod stop) has no more probe results.
        guard container.isRunning, !termination.isTerminating(container.name), var tracker = state.trackers[kind] else {
            states[container.name] = state
            return
        }
        let change = tracker.record(success: success, at: clock.now())
        state.trackers[kind] = tracker
        if !success {
            printer.message("container \(container.name): \(kind.rawValue) probe failed (\(tracker.consecutiveFailures)/\(tracker.probe.failureThreshold)): \(detail)")
        }
        if kind == .startup && change == .success {
            printer.message("container \(container.name): started (startup probe succeeded)")
            state.startupPassed = true
            let now = clock.now()
            for other in [ProbeKind.liveness, .readiness] {
                state.trackers[other]?.reset(containerStarted: now)
            }
        }
        // The state is stored before anything reads it back (setReady, termination).
        states[container.name] = state
        switch (kind, change) {
        case (.startup, .success?):
            setReady(container, container.probes[.readiness] == nil, reason: nil)
        case (.startup, .failure?), (.liveness, .failure?):
            printer.message("container \(container.name): \(kind.rawValue) probe failed \(tracker.probe.failureThreshold) times: stopping it (restartPolicy \(pod.spec.restartPolicy.rawValue))")
            setReady(container, false, reason: "\(kind.rawValue) probe failed")
            let grace = tracker.probe.terminationGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds
            termination.begin([container], graceSeconds: grace)
        case (.readiness, .success?):
            setReady(container, true, reason: nil)
        case (.readiness, .failure?):
            setReady(container, false, reason: detail)
        default:
            break
        }
    }

    /// `container` exited on its own or was stopped (not by a pod stop): restart it per policy.
    func exited(_ container: Container, termination exit: ContainerTermination) {
        guard var state = states[container.name] else { return }
        state.inFlight = []
        states[container.name] = state
        printer.message("container \(container.name) exited: code \(exit.exitCode) (\(exit.reason)\(exit.signal.map { ", \($0.name)" } ?? ""))")
        setReady(container, false, reason: nil)
        guard PodPhase.restarts(pod.spec.restartPolicy, exitCode: exit.exitCode) else { return }
        state = states[container.name] ?? state
        let now = clock.now()
        let ran = Double(now.nanoseconds &- state.startedAt.nanoseconds) / 1e9
        let delay = state.backoff.delay(afterRunning: ran)
        state.restartAt = now.advanced(bySeconds: delay)
        states[container.name] = state
        printer.message("container \(container.name): back-off \(Int(delay))s before restart \(container.restartCount + 1) (CrashLoopBackOff, restartPolicy \(pod.spec.restartPolicy.rawValue))")
    }

    private func setReady(_ container: Container, _ ready: Bool, reason: String?) {
        guard var state = states[container.name] else { return }
        if state.ready != ready {
            state.ready = ready
            states[container.name] = state
            printer.message("container \(container.name): " + (ready ? "ready" : "not ready" + (reason.map { " (\($0))" } ?? "")))
        }
        let allReady = pod.containers.allSatisfy { states[$0.name]?.ready == true }
        if allReady != podReady {
            podReady = allReady
            printer.message("pod " + (allReady ? "ready" : "not ready"))
        }
    }
}
