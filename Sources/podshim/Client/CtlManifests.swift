import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl apply pod.yaml`: run a manifest under the daemon's supervision (PodService.RunPod).
struct CtlApply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Run a Pod manifest (the format of `podshim run`) under the daemon's supervision; prints its id.",
        discussion: """
            The daemon runs its probes, restarts its containers per restartPolicy and reports its phase (see `podshim ctl describe`). Such pods stop with the daemon.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("A Kubernetes Pod manifest (YAML); - reads stdin.", valueName: "pod.yaml"))
    var manifest: String

    func run() async throws {
        try await CtlReport.run("apply", socket: options.socket) {
            let data = manifest == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: manifest))
            var request = Podshim_V1_RunPodRequest()
            request.manifest = String(decoding: data, as: UTF8.self)
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let response = try await session.supervised.runPod(request, options: session.options)
                CtlOutput.line(response.podID)
            }
        }
    }
}

/// `podshim ctl describe ID`: phase, conditions and container states of a supervised pod.
struct CtlDescribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe", abstract: "Show a supervised pod's phase, conditions and container states.")

    @OptionGroup var options: CtlOptions

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    @Argument(help: ArgumentHelp("The pod's id (its uid) or a unique prefix.", valueName: "pod-id"))
    var id: String

    func run() async throws {
        try await CtlReport.run("describe", socket: options.socket) {
            var request = Podshim_V1_PodStatusRequest()
            request.podID = id
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let status = try await session.supervised.podStatus(request, options: session.options)
                if output == .json { return CtlOutput.line(try CtlJSON.pretty(status)) }
                CtlOutput.line("Pod:        \(status.namespace)/\(status.name) (\(status.podID))")
                CtlOutput.line("Phase:      \(status.phase)" + (status.finished ? " (finished)" : ""))
                CtlOutput.line("Conditions: " + status.conditions.map { "\($0.type)=\($0.status)" }.joined(separator: " "))
                let rows = status.containers.map { container -> [String] in
                    [container.name, container.state, container.reason.isEmpty ? "-" : container.reason,
                     container.state == "Running" ? "-" : String(container.exitCode), String(container.restartCount),
                     container.ready ? "true" : "false"]
                }
                CtlOutput.lines(CtlFormat.table(header: ["CONTAINER", "STATE", "REASON", "EXIT", "RESTARTS", "READY"], rows: rows))
            }
        }
    }
}

/// `podshim ctl manifests`: the supervised pods.
struct CtlManifestPods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests", abstract: "List the pods the daemon supervises (those started with `podshim ctl apply`).")

    @OptionGroup var options: CtlOptions

    func run() async throws {
        try await CtlReport.run("manifests", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let pods = try await session.supervised.listPods(Podshim_V1_ListPodsRequest(), options: session.options).pods
                let rows = pods.map { pod -> [String] in
                    let ready = pod.containers.filter(\.ready).count
                    return [pod.podID, "\(pod.namespace)/\(pod.name)", pod.phase, "\(ready)/\(pod.containers.count)",
                            String(pod.containers.map(\.restartCount).reduce(0, +))]
                }
                CtlOutput.lines(CtlFormat.table(header: ["POD ID", "NAME", "PHASE", "READY", "RESTARTS"], rows: rows))
            }
        }
    }
}

/// `podshim ctl terminate [--grace N] ID`: graceful stop of a supervised pod.
struct CtlTerminate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terminate", abstract: "Stop a supervised pod gracefully (preStop, stop signal, SIGKILL at the deadline).")

    @OptionGroup var options: CtlOptions

    @Option(help: ArgumentHelp("Grace period in seconds, instead of the manifest's; 0 forces.", valueName: "seconds"))
    var grace: Int64?

    @Argument(help: ArgumentHelp("The pod's id or a unique prefix.", valueName: "pod-id"))
    var id: String

    func run() async throws {
        try await CtlReport.run("terminate", socket: options.socket) {
            var request = Podshim_V1_StopPodRequest()
            request.podID = id
            request.gracePeriodSeconds = grace ?? -1
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                _ = try await session.supervised.stopPod(request, options: session.options)
            }
        }
    }
}

/// `podshim ctl delete ID`: force a supervised pod down and forget it.
struct CtlDelete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Stop a supervised pod at once if it still runs, and forget it.")

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("The pod's id or a unique prefix.", valueName: "pod-id"))
    var id: String

    func run() async throws {
        try await CtlReport.run("delete", socket: options.socket) {
            var request = Podshim_V1_RemovePodRequest()
            request.podID = id
            try await CtlSession.with(socket: options.socket, deadline: .seconds(90)) { session in
                _ = try await session.supervised.removePod(request, options: session.options)
            }
        }
    }
}
