/// `containers[].lifecycle`: what runs before a container is stopped, and the signal that stops it.
public struct Lifecycle: Equatable, Sendable {
    /// Runs when the container is asked to stop, before the stop signal; bounded by the grace period.
    public var preStop: LifecycleHandler?
    /// `stopSignal` (`SIGTERM` when unset), as a name such as `SIGUSR1` (validated by the parser).
    public var stopSignal: String?

    public init(preStop: LifecycleHandler? = nil, stopSignal: String? = nil) {
        self.preStop = preStop
        self.stopSignal = stopSignal
    }
}

/// A lifecycle hook: a command in the container, or an HTTP GET from inside the pod's network.
public enum LifecycleHandler: Equatable, Sendable {
    case exec(command: [String])
    case httpGet(HTTPGetAction)
    /// `sleep: { seconds: N }`.
    case sleep(seconds: Int)
}

/// `httpGet`: `GET path` on `host:port` (host defaults to the pod's own address, 127.0.0.1 here).
public struct HTTPGetAction: Equatable, Sendable {
    public var path: String
    public var port: PortReference
    public var host: String?
    public var headers: [(name: String, value: String)]

    public init(path: String = "/", port: PortReference, host: String? = nil, headers: [(name: String, value: String)] = []) {
        self.path = path
        self.port = port
        self.host = host
        self.headers = headers
    }

    public static func == (left: HTTPGetAction, right: HTTPGetAction) -> Bool {
        left.path == right.path && left.port == right.port && left.host == right.host
            && left.headers.map(\.name) == right.headers.map(\.name) && left.headers.map(\.value) == right.headers.map(\.value)
    }
}

/// A port given as a number or as the name of one of the container's ports.
public enum PortReference: Equatable, Sendable {
    case number(Int)
    case name(String)

    /// The port number, resolving a name against `ports`; nil for an unknown name.
    public func resolve(in ports: [ContainerPort]) -> Int? {
        switch self {
        case .number(let number): return number
        case .name(let name): return ports.first { $0.name == name }?.containerPort
        }
    }
}
