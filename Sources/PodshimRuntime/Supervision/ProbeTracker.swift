import PodshimSpec
import PodshimSystem

/// One probe of one container: when it runs next, and what its results add up to. Pure: the
/// caller gives the instants (an injected clock in tests).
///
/// Kubernetes' rules: the first run is `initialDelaySeconds` after the container started, then one
/// every `periodSeconds`; the status changes to success after `successThreshold` consecutive
/// successes and to failure after `failureThreshold` consecutive failures. A readiness probe is
/// "not ready" until it first succeeds; liveness and startup are "unknown" (not acted on) until then.
public struct ProbeTracker: Equatable, Sendable {
    public enum Status: Equatable, Sendable {
        case unknown, success, failure
    }

    public let kind: ProbeKind
    public let probe: Probe
    public private(set) var status: Status = .unknown
    public private(set) var nextRun: MonotonicInstant
    public private(set) var consecutiveSuccesses = 0
    public private(set) var consecutiveFailures = 0
    /// Results recorded (for tests and reports).
    public private(set) var runs = 0

    public init(kind: ProbeKind, probe: Probe, containerStarted: MonotonicInstant) {
        self.kind = kind
        self.probe = probe
        nextRun = containerStarted.advanced(bySeconds: Double(probe.initialDelaySeconds))
    }

    /// Records a result obtained at `now`; returns the new status when it changed.
    @discardableResult
    public mutating func record(success: Bool, at now: MonotonicInstant) -> Status? {
        runs += 1
        if success {
            consecutiveSuccesses += 1
            consecutiveFailures = 0
        } else {
            consecutiveFailures += 1
            consecutiveSuccesses = 0
        }
        nextRun = now.advanced(bySeconds: Double(probe.periodSeconds))
        let previous = status
        if success && consecutiveSuccesses >= probe.successThreshold { status = .success }
        if !success && consecutiveFailures >= probe.failureThreshold { status = .failure }
        return status == previous ? nil : status
    }

    /// Starts over (a failed liveness probe restarted the container).
    public mutating func reset(containerStarted: MonotonicInstant) {
        self = ProbeTracker(kind: kind, probe: probe, containerStarted: containerStarted)
    }
}
