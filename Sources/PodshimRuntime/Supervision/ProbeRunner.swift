import Glibc
import PodshimSpec
import PodshimSystem

/// Runs one probe once: exec in the container's namespaces, HTTP GET or TCP connect from inside the
/// pod's network namespace, each bounded by `timeoutSeconds`. Blocking; never leaves a process or
/// socket behind (the exec'd command is killed at its timeout, sockets are closed).
public enum ProbeRunner {
    /// Whether the probe succeeded, and a short description of what it saw.
    public static func run(_ probe: Probe, in container: Container, sandbox: ProcessHandle?) -> (success: Bool, detail: String) {
        let timeout = Double(probe.timeoutSeconds)
        switch probe.handler {
        case .exec(let command):
            do {
                let result = try ContainerExec.run(in: container, argv: command, timeoutSeconds: timeout, outputLimit: 10 << 10)
                if result.timedOut { return (false, "exec timed out after \(probe.timeoutSeconds)s") }
                return (result.exitCode == 0, "exec exited \(result.exitCode)")
            } catch {
                return (false, "exec: \(error)")
            }
        case .httpGet(let action):
            guard let port = action.port.resolve(in: container.ports) else { return (false, "unknown port") }
            guard let sandbox else { return (false, "no sandbox") }
            switch PodNetwork.httpGet(sandbox: sandbox, host: action.host ?? "127.0.0.1", port: port, path: action.path,
                                      headers: action.headers, timeoutSeconds: timeout) {
            case .success(let status): return ((200..<400).contains(status), "HTTP \(status)")
            case .failure(let failure): return (false, failure.description)
            }
        case .tcpSocket(let host, let portReference):
            guard let port = portReference.resolve(in: container.ports) else { return (false, "unknown port") }
            guard let sandbox else { return (false, "no sandbox") }
            let deadline = MonotonicInstant.now().advanced(bySeconds: timeout)
            switch PodNetwork.connect(sandbox: sandbox, host: host ?? "127.0.0.1", port: port, deadline: deadline) {
            case .success(let fd):
                close(fd)
                return (true, "connected to port \(port)")
            case .failure(let failure):
                return (false, failure.description)
            }
        }
    }
}
