/// Parsing `containers[].lifecycle`.
extension ManifestParser {
    private static let lifecycleFields: Set<String> = ["preStop", "postStart", "stopSignal"]
    private static let handlerFields: Set<String> = ["exec", "httpGet", "sleep", "tcpSocket"]
    private static let httpGetFields: Set<String> = ["path", "port", "host", "scheme", "httpHeaders"]
    private static let headerFields: Set<String> = ["name", "value"]
    /// Signals a container may be stopped with (Kubernetes' list, the real-time ones aside).
    static let stopSignals = [
        "SIGABRT", "SIGALRM", "SIGBUS", "SIGCHLD", "SIGCONT", "SIGFPE", "SIGHUP", "SIGILL", "SIGINT", "SIGIO",
        "SIGKILL", "SIGPIPE", "SIGPROF", "SIGPWR", "SIGQUIT", "SIGSEGV", "SIGSTKFLT", "SIGSTOP", "SIGSYS",
        "SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGVTALRM",
        "SIGWINCH", "SIGXCPU", "SIGXFSZ",
    ]

    static func parseLifecycle(_ container: ManifestMapping, ports: [ContainerPort]) throws(ManifestError) -> Lifecycle {
        guard let lifecycle = try container.mapping("lifecycle", accepting: lifecycleFields) else { return Lifecycle() }
        if lifecycle.contains("postStart") {
            throw ManifestError(path: lifecycle.path(of: "postStart"), message: "not supported (preStop is)")
        }
        let stopSignal = try lifecycle.oneOf("stopSignal", stopSignals)
        var preStop: LifecycleHandler?
        if let handler = try lifecycle.mapping("preStop", accepting: handlerFields) {
            preStop = try parseHandler(handler, ports: ports)
        }
        return Lifecycle(preStop: preStop, stopSignal: stopSignal)
    }

    /// Exactly one of `exec`, `httpGet`, `sleep`.
    private static func parseHandler(_ handler: ManifestMapping, ports: [ContainerPort]) throws(ManifestError) -> LifecycleHandler {
        let given = ["exec", "httpGet", "sleep", "tcpSocket"].filter { handler.contains($0) }
        guard given.count == 1 else {
            throw handler.error(given.isEmpty ? "needs one of exec, httpGet, sleep" : "must have only one of exec, httpGet, sleep")
        }
        switch given[0] {
        case "exec":
            let exec = try handler.mapping("exec", accepting: ["command"]) ?? .empty(at: handler.path(of: "exec"))
            let command = try exec.stringList("command")
            guard !command.isEmpty, !command[0].isEmpty else {
                throw ManifestError(path: exec.path(of: "command"), message: "required")
            }
            return .exec(command: command)
        case "sleep":
            let sleep = try handler.mapping("sleep", accepting: ["seconds"]) ?? .empty(at: handler.path(of: "sleep"))
            guard let seconds = try sleep.int("seconds"), seconds >= 0 else {
                throw ManifestError(path: sleep.path(of: "seconds"), message: "required, not negative")
            }
            return .sleep(seconds: seconds)
        case "httpGet":
            let get = try handler.mapping("httpGet", accepting: httpGetFields) ?? .empty(at: handler.path(of: "httpGet"))
            return .httpGet(try parseHTTPGet(get, ports: ports))
        default:
            throw ManifestError(path: handler.path(of: "tcpSocket"), message: "not supported as a lifecycle hook (Kubernetes deprecated it)")
        }
    }

    /// `httpGet: { path, port, host, scheme, httpHeaders }` (scheme HTTP only); shared with probes.
    static func parseHTTPGet(_ get: ManifestMapping, ports: [ContainerPort]) throws(ManifestError) -> HTTPGetAction {
        let port = try parsePortReference(get.requiredField("port"), ports: ports)
        let path = try get.string("path") ?? "/"
        guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else {
            throw ManifestError(path: get.path(of: "path"), message: "must start with / and contain no spaces or line breaks")
        }
        if let scheme = try get.oneOf("scheme", ["HTTP", "HTTPS"]), scheme == "HTTPS" {
            throw ManifestError(path: get.path(of: "scheme"), message: "HTTPS is not supported (HTTP)")
        }
        var headers: [(name: String, value: String)] = []
        for item in try get.mappingList("httpHeaders", accepting: headerFields) {
            let name = try item.requiredString("name")
            let value = try item.string("value") ?? ""
            guard !name.isEmpty, !(name + value).contains(where: { $0 == "\r" || $0 == "\n" || $0 == ":" && name.contains(":") }) else {
                throw ManifestError(path: item.path(of: "name"), message: "not a valid header")
            }
            headers.append((name, value))
        }
        return HTTPGetAction(path: path, port: port, host: try get.string("host"), headers: headers)
    }

    /// A port number (1–65535) or the name of one of the container's ports.
    static func parsePortReference(_ node: ManifestNode, ports: [ContainerPort]) throws(ManifestError) -> PortReference {
        if let number = try? node.int() { // not an integer: then a port name, checked below
            guard (1...65535).contains(number) else { throw node.error("must be between 1 and 65535") }
            return .number(number)
        }
        let name = try node.string()
        guard ports.contains(where: { $0.name == name }) else {
            throw node.error("no container port named \"\(name)\"")
        }
        return .name(name)
    }
}
