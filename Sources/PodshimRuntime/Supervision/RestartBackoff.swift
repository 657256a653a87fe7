/// The kubelet's crash-loop back-off: 10 s before the first restart, doubling up to 5 minutes, and
/// back to 10 s once a container has run for 10 minutes. Pure.
public struct RestartBackoff: Equatable, Sendable {
    public static let initialSeconds = 10.0
    public static let maximumSeconds = 300.0
    public static let resetAfterSeconds = 600.0

    /// The delay before the next restart.
    public private(set) var currentSeconds = RestartBackoff.initialSeconds
    private var restarts = 0

    public init() {}

    /// The container exited after running `ranSeconds`: the delay before restarting it.
    public mutating func delay(afterRunning ranSeconds: Double) -> Double {
        if ranSeconds >= Self.resetAfterSeconds {
            restarts = 0
            currentSeconds = Self.initialSeconds
        }
        let delay = restarts == 0 ? Self.initialSeconds : min(Self.maximumSeconds, currentSeconds * 2)
        currentSeconds = delay
        restarts += 1
        return delay
    }
}
