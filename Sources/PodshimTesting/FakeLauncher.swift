import PodshimRuntime
import PodshimSpec
import PodshimSystem
import Synchronization

/// A ``Launcher`` for unit tests that starts nothing: a pause or a container "runs" on a process
/// handle without a pidfd, killing the pause posts its exit, probes answer from a script, and
/// every start is recorded with its instant on the test's clock.
public final class FakeLauncher: Launcher {
    private let clock: any Timekeeper
    private let restarted = Mutex<[String: [MonotonicInstant]]>([:])
    private let started = Mutex<[String]>([])
    private let scripted = Mutex<[ProbeKind: [Bool]]>([:])
    private let failing = Mutex<Set<String>>([])

    public init(clock: any Timekeeper) { self.clock = clock }

    /// When each container was restarted.
    public func restarts(of name: String) -> [MonotonicInstant] { restarted.withLock { $0[name] ?? [] } }

    /// Every pause ("sandbox") and container start, in order.
    public var starts: [String] { started.withLock { $0 } }

    /// The next results of `kind` probes (success once the script runs out).
    public func script(_ kind: ProbeKind, _ results: [Bool]) { scripted.withLock { $0[kind, default: []] += results } }

    /// Makes the next start of `name` ("sandbox" for the pause) fail.
    public func failStarts(of name: String) { _ = failing.withLock { $0.insert(name) } }

    public func startSandbox(of pod: Pod) throws(PodError) {
        started.withLock { $0.append("sandbox") }
        if failing.withLock({ $0.remove("sandbox") != nil }) { throw PodError("sandbox", message: "start refused by the fake launcher") }
        pod.adoptSandbox(ProcessHandle(pid: 999_998, pidfd: -1), cgroupPath: nil)
    }

    public func killSandbox(of pod: Pod) {
        pod.events.post(.sandboxExited(.signaled(.kill, coreDumped: false)))
    }

    public func start(_ container: Container, in pod: Pod, sink: LineSink?) throws(PodError) {
        started.withLock { $0.append(container.name) }
        if failing.withLock({ $0.remove(container.name) != nil }) {
            throw PodError("container \(container.name)", message: "start refused by the fake launcher")
        }
        Self.run(container)
    }

    public func restart(_ container: Container, in pod: Pod, sink: @escaping LineSink) throws(PodError) {
        let now = clock.now()
        restarted.withLock { $0[container.name, default: []].append(now) }
        _ = container.prepareForRestart()
        Self.run(container)
    }

    public func probe(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String) {
        let kind = container.probes.first { $0.value == probe }?.key ?? .liveness
        let success = scripted.withLock { script -> Bool in
            guard var results = script[kind], !results.isEmpty else { return true }
            let first = results.removeFirst()
            script[kind] = results
            return first
        }
        return (success, success ? "ok" : "scripted failure")
    }

    /// Marks `container` running without a process.
    public static func run(_ container: Container) {
        container.markCloned()
        container.markStarted(ProcessHandle(pid: 999_999, pidfd: -1))
    }
}
