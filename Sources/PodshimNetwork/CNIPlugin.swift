import Foundation
import Glibc
import PodshimSystem

/// One call of a CNI plugin executable, the way libcni makes it: the configuration on stdin, the
/// parameters in `CNI_*` variables added to podshim's own environment (plugins exec `iptables`, so
/// PATH matters), the result or the error on stdout.
public struct CNIInvocation: Sendable {
    public enum Command: String, Sendable { case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION" }

    public var command: Command
    public var containerID: String
    /// Empty for a DEL whose network namespace is gone.
    public var netns: String
    public var ifName: String
    /// `K=V` pairs, joined with `;`.
    public var args: [(String, String)]
    /// Where delegated plugins (IPAM) are found.
    public var pluginPath: [String]

    public init(command: Command, containerID: String, netns: String, ifName: String, args: [(String, String)], pluginPath: [String]) {
        self.command = command
        self.containerID = containerID
        self.netns = netns
        self.ifName = ifName
        self.args = args
        self.pluginPath = pluginPath
    }

    var environment: [String] {
        var inherited = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CNI_") }
        // Plugins run iptables, ip and their IPAM: a daemon started with a bare PATH still finds them.
        let path = inherited["PATH"] ?? ""
        inherited["PATH"] = ([path] + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
            .filter { !$0.isEmpty }.joined(separator: ":")
        var entries = inherited.map { "\($0.key)=\($0.value)" }.sorted()
        entries += [
            "CNI_COMMAND=\(command.rawValue)", "CNI_CONTAINERID=\(containerID)", "CNI_NETNS=\(netns)",
            "CNI_IFNAME=\(ifName)", "CNI_PATH=\(pluginPath.joined(separator: ":"))",
            "CNI_ARGS=" + args.map { "\($0.0)=\($0.1)" }.joined(separator: ";"),
        ]
        return entries
    }

    /// Runs `plugin` (an executable path) with `config`; returns what it printed on success (a
    /// result for ADD, nothing for DEL and CHECK). A failure is thrown with the plugin's own error
    /// (code, msg, details) when it gave one.
    public func run(plugin: String, config: JSONValue, timeoutSeconds: Double) throws(PodshimError) -> JSONValue? {
        let type = (plugin as NSString).lastPathComponent
        let subject = "CNI plugin \(type) (\(command.rawValue) \(containerID.prefix(13)))"
        let command = HelperCommand([plugin], environment: environment)
        var result: HelperCommand.Result?
        // libcni retries a plugin binary that is being replaced (ETXTBSY) a few times.
        for attempt in 0..<5 {
            do {
                result = try command.run(input: Array(config.text.utf8), timeoutSeconds: timeoutSeconds)
                break
            } catch {
                guard error.errno == .textFileBusy, attempt < 4 else {
                    throw PodshimError(.unavailable, operation: "run", subject: subject, errno: error.errno,
                                       message: "cannot run \(plugin)")
                }
                usleep(200_000)
            }
        }
        guard let result else { throw PodshimError(.internal, operation: "run", subject: subject, message: "no result") }
        if result.timedOut {
            throw PodshimError(.deadlineExceeded, operation: self.command.rawValue, subject: subject,
                               message: "no answer within \(Int(timeoutSeconds)) s: killed")
        }
        let output = Array(result.stdout)
        guard result.succeeded else {
            throw Self.pluginError(output: output, stderr: result.stderrText, status: result.status, operation: self.command.rawValue, subject: subject)
        }
        let trimmed = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return nil }
        do {
            return try JSONValue.parse(output)
        } catch {
            throw PodshimError(.internal, operation: self.command.rawValue, subject: subject,
                               message: "its result is not JSON (\(error)): \(trimmed.prefix(200))")
        }
    }

    /// The plugin's error as podshim's: `{code, msg, details}` from stdout, else stderr's text.
    static func pluginError(output: [UInt8], stderr: String, status: ExitStatus, operation: String, subject: String) -> PodshimError {
        if let value = try? JSONValue.parse(output), let message = value["msg"]?.stringValue { // not JSON: stderr below
            let code = value["code"]?.intValue ?? 0
            var text = message
            if let details = value["details"]?.stringValue, !details.isEmpty { text += " (\(details))" }
            text += " [CNI error code \(code)]"
            // 11: "try again later"; the others are the configuration's or the plugin's fault.
            return PodshimError(code == 11 ? .unavailable : .failedPrecondition, operation: operation, subject: subject, message: text)
        }
        let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        let shown = text.isEmpty ? String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : text
        return PodshimError(.failedPrecondition, operation: operation, subject: subject,
                            message: "failed (\(status))" + (shown.isEmpty ? "" : ": \(shown.prefix(500))"))
    }
}
