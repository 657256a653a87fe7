/// What a supervised pod looks like right now, as Kubernetes reports it: taken by the pod's event
/// loop after every event, read from any thread.
public struct PodStatusSnapshot: Equatable, Sendable {
    public struct ContainerStatus: Equatable, Sendable {
        public var name: String
        /// `Waiting`, `Running`, `Terminated`.
        public var state: String
        /// Waiting: `ContainerCreating` or `CrashLoopBackOff`; Terminated: the CRI reason.
        public var reason: String
        public var message: String
        public var exitCode: Int32
        public var startedAt: Int64
        public var finishedAt: Int64
        public var restartCount: Int
        public var ready: Bool
    }

    public var phase: PodPhase
    public var ready: Bool
    public var containers: [ContainerStatus]
    /// The supervision loop has ended.
    public var finished: Bool

    public init(phase: PodPhase = .pending, ready: Bool = false, containers: [ContainerStatus] = [], finished: Bool = false) {
        self.phase = phase
        self.ready = ready
        self.containers = containers
        self.finished = finished
    }
}
