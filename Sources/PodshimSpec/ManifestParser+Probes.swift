/// Parsing `livenessProbe`, `readinessProbe` and `startupProbe`.
extension ManifestParser {
    private static let probeFields: Set<String> = [
        "exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
        "successThreshold", "failureThreshold", "terminationGracePeriodSeconds",
    ]
    private static let httpGetFields: Set<String> = ["path", "port", "host", "scheme", "httpHeaders"]
    private static let tcpSocketFields: Set<String> = ["port", "host"]

    static func parseProbes(_ container: ManifestMapping, ports: [ContainerPort]) throws(ManifestError) -> [ProbeKind: Probe] {
        var probes: [ProbeKind: Probe] = [:]
        for kind in ProbeKind.allCases {
            guard let probe = try container.mapping(kind.rawValue + "Probe", accepting: probeFields) else { continue }
            probes[kind] = try parseProbe(probe, kind: kind, ports: ports)
        }
        return probes
    }

    private static func parseProbe(_ probe: ManifestMapping, kind: ProbeKind, ports: [ContainerPort]) throws(ManifestError) -> Probe {
        let given = ["exec", "httpGet", "tcpSocket", "grpc"].filter { probe.contains($0) }
        guard given.count == 1 else {
            throw probe.error(given.isEmpty ? "needs one of exec, httpGet, tcpSocket" : "must have only one of exec, httpGet, tcpSocket")
        }
        let handler: Probe.Handler
        switch given[0] {
        case "exec":
            let exec = try probe.mapping("exec", accepting: ["command"]) ?? .empty(at: probe.path(of: "exec"))
            let command = try exec.stringList("command")
            guard !command.isEmpty, !command[0].isEmpty else { throw ManifestError(path: exec.path(of: "command"), message: "required") }
            handler = .exec(command: command)
        case "httpGet":
            let get = try probe.mapping("httpGet", accepting: httpGetFields) ?? .empty(at: probe.path(of: "httpGet"))
            handler = .httpGet(try parseHTTPGet(get, ports: ports))
        case "tcpSocket":
            let tcp = try probe.mapping("tcpSocket", accepting: tcpSocketFields) ?? .empty(at: probe.path(of: "tcpSocket"))
            handler = .tcpSocket(host: try tcp.string("host"), port: try parsePortReference(tcp.requiredField("port"), ports: ports))
        default:
            throw ManifestError(path: probe.path(of: "grpc"), message: "grpc probes are not supported (exec, httpGet, tcpSocket)")
        }
        func number(_ field: String, default value: Int, minimum: Int) throws(ManifestError) -> Int {
            let number = try probe.int(field) ?? value
            guard number >= minimum else { throw ManifestError(path: probe.path(of: field), message: "must be at least \(minimum)") }
            return number
        }
        var result = Probe(
            handler: handler,
            initialDelaySeconds: try number("initialDelaySeconds", default: 0, minimum: 0),
            periodSeconds: try number("periodSeconds", default: 10, minimum: 1),
            timeoutSeconds: try number("timeoutSeconds", default: 1, minimum: 1),
            successThreshold: try number("successThreshold", default: 1, minimum: 1),
            failureThreshold: try number("failureThreshold", default: 3, minimum: 1))
        if let grace = try probe.int("terminationGracePeriodSeconds") {
            guard kind != .readiness else {
                throw ManifestError(path: probe.path(of: "terminationGracePeriodSeconds"), message: "not allowed for readiness probes")
            }
            guard grace >= 1 else {
                throw ManifestError(path: probe.path(of: "terminationGracePeriodSeconds"), message: "must be at least 1")
            }
            result.terminationGracePeriodSeconds = Int64(grace)
        }
        if kind != .readiness && result.successThreshold != 1 {
            throw ManifestError(path: probe.path(of: "successThreshold"), message: "must be 1 for \(kind.rawValue) probes")
        }
        return result
    }
}
