import PodshimSystem

/// The timeline of one container's graceful termination, as Kubernetes defines it — pure, so
/// that it is tested with made-up instants:
///
/// - the grace period starts when termination starts; its end is the kill deadline;
/// - the preStop hook (if any) runs first and may use the whole grace period; the stop signal is
///   sent when it finishes;
/// - if the hook still runs at the deadline, the deadline moves once by 2 seconds and the stop
///   signal is sent then;
/// - at the (possibly extended) deadline, SIGKILL;
/// - a grace period of 0 kills at once (no hook, no stop signal).
public struct TerminationSchedule: Equatable, Sendable {
    /// The kubelet's one-off extension for a preStop hook that overruns the grace period.
    public static let preStopExtensionSeconds = 2.0

    public let start: MonotonicInstant
    public let graceSeconds: Double
    /// When SIGKILL is due.
    public private(set) var deadline: MonotonicInstant
    /// The 2-second extension was granted.
    public private(set) var extended = false

    /// The longest grace period honoured (ten years): longer ones are this (a kubelet sends
    /// int64 seconds; a deadline must stay representable).
    public static let maximumGraceSeconds: Int64 = 10 * 365 * 86_400

    /// The one rule that turns a requested grace period into seconds, for every path (CRI
    /// StopContainer and StopPodSandbox, a manifest's `terminationGracePeriodSeconds`, a force
    /// delete): negative means 0 (kill now), longer than ``maximumGraceSeconds`` is clamped to it.
    public static func clampedGrace(_ seconds: Int64) -> Double {
        Double(min(max(0, seconds), maximumGraceSeconds))
    }

    public init(start: MonotonicInstant, graceSeconds: Double) {
        self.start = start
        self.graceSeconds = max(0, graceSeconds)
        deadline = start.advanced(bySeconds: self.graceSeconds)
    }

    /// Grace 0: SIGKILL now, nothing else.
    public var isForced: Bool { graceSeconds == 0 }

    /// What happens when the deadline is reached.
    public enum Step: Equatable, Sendable {
        /// SIGKILL now.
        case kill
        /// The preStop hook overran: send the stop signal now and SIGKILL at `deadline`.
        case signalAndKill(at: MonotonicInstant)
    }

    /// The deadline has come; `preStopRunning` says whether the hook is still running.
    public mutating func deadlineReached(preStopRunning: Bool) -> Step {
        guard preStopRunning, !extended, !isForced else { return .kill }
        extended = true
        deadline = deadline.advanced(bySeconds: Self.preStopExtensionSeconds)
        return .signalAndKill(at: deadline)
    }

    /// How long the preStop hook may still run at `now`: to the deadline plus the extension it
    /// would get (after that the container, and the hook with it, is killed).
    public func preStopBudget(at now: MonotonicInstant) -> Double {
        let end = deadline.advanced(bySeconds: extended ? 0 : Self.preStopExtensionSeconds)
        return end.nanoseconds > now.nanoseconds ? Double(end.nanoseconds - now.nanoseconds) / 1e9 : 0
    }
}
