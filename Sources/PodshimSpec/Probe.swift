/// A container probe (`livenessProbe`, `readinessProbe`, `startupProbe`), with Kubernetes' defaults.
public struct Probe: Equatable, Sendable {
    public enum Handler: Equatable, Sendable {
        /// A command in the container's namespaces: success iff it exits 0.
        case exec(command: [String])
        /// An HTTP GET from inside the pod's network namespace: success iff 200 ≤ status < 400.
        case httpGet(HTTPGetAction)
        /// A TCP connect in the pod's network namespace: success iff it connects.
        case tcpSocket(host: String?, port: PortReference)
    }

    public var handler: Handler
    public var initialDelaySeconds: Int
    public var periodSeconds: Int
    public var timeoutSeconds: Int
    public var successThreshold: Int
    public var failureThreshold: Int
    /// The grace period of a kill this probe causes (liveness, startup), instead of the pod's.
    public var terminationGracePeriodSeconds: Int64?

    public init(handler: Handler, initialDelaySeconds: Int = 0, periodSeconds: Int = 10, timeoutSeconds: Int = 1,
                successThreshold: Int = 1, failureThreshold: Int = 3, terminationGracePeriodSeconds: Int64? = nil) {
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
        self.handler = handler
        self.initialDelaySeconds = initialDelaySeconds
        self.periodSeconds = periodSeconds
        self.timeoutSeconds = timeoutSeconds
        self.successThreshold = successThreshold
        self.failureThreshold = failureThreshold
    }
}

/// Which of a container's probes.
public enum ProbeKind: String, Equatable, Hashable, Sendable, CaseIterable {
    case startup, liveness, readiness
}
