import PodshimSpec

/// The pod phase, from its containers (Kubernetes' definitions). Pure.
public enum PodPhase: String, Equatable, Sendable {
    /// Accepted, but no container is running yet (and none terminated).
    case pending = "Pending"
    /// Bound, every container created, at least one running, starting or restarting.
    case running = "Running"
    /// Every container terminated successfully and none will restart.
    case succeeded = "Succeeded"
    /// Every container terminated, at least one in failure, and none will restart.
    case failed = "Failed"
    /// The state of the pod could not be obtained.
    case unknown = "Unknown"

    /// What one container is doing, as far as the phase cares.
    public enum ContainerSituation: Equatable, Sendable {
        case waiting
        case running
        /// Exited with `exitCode`; `willRestart` when the restart policy brings it back.
        case terminated(exitCode: Int32, willRestart: Bool)
        case unknown
    }

    public static func of(_ containers: [ContainerSituation]) -> PodPhase {
        if containers.contains(.unknown) { return .unknown }
        var running = false
        var terminated = 0
        var failed = false
        for situation in containers {
            switch situation {
            case .waiting: break
            case .running: running = true
            case .terminated(let code, let willRestart):
                if willRestart { running = true } else {
                    terminated += 1
                    if code != 0 { failed = true }
                }
            case .unknown: break
            }
        }
        if !containers.isEmpty && terminated == containers.count { return failed ? .failed : .succeeded }
        if running || terminated > 0 { return .running }
        return .pending
    }

    /// Whether a container that exited with `exitCode` is restarted under `policy`.
    public static func restarts(_ policy: RestartPolicy, exitCode: Int32) -> Bool {
        switch policy {
        case .always: return true
        case .onFailure: return exitCode != 0
        case .never: return false
        }
    }
}
