import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl pods`: ListPodSandbox.
struct CtlPods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pods",
        abstract: "List pod sandboxes, newest first.",
        discussion: """
            --state and --label are applied by the daemon; --name and --namespace by ctl.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(help: ArgumentHelp("Only pods whose name contains this text.", valueName: "text"))
    var name: String?

    @Option(help: ArgumentHelp("Only pods in this namespace.", valueName: "namespace"))
    var namespace: String?

    @Option(help: "Only pods in this state.")
    var state: CtlPodStateOption?

    @Option(help: ArgumentHelp("Only pods with this label (repeat for several; all must match).", valueName: "key=value"))
    var label: [String] = []

    @Flag(name: .short, help: "Print only the full pod ids, one a line.")
    var quiet = false

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        try await CtlReport.run("pods", socket: options.socket) {
            var filter = Runtime_V1_PodSandboxFilter()
            filter.labelSelector = try CtlFormat.labelSelector(label)
            if let state {
                filter.state.state = state == .ready ? .sandboxReady : .sandboxNotready
            }
            var request = Runtime_V1_ListPodSandboxRequest()
            request.filter = filter
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var response = try await session.runtime.listPodSandbox(request, options: session.options)
                response.items = response.items
                    .filter { pod in
                        (name.map { pod.metadata.name.contains($0) } ?? true)
                            && (namespace.map { pod.metadata.namespace == $0 } ?? true)
                    }
                    .sorted { $0.createdAt > $1.createdAt }
                if quiet {
                    CtlOutput.lines(response.items.map(\.id))
                } else if output == .json {
                    CtlOutput.line(try CtlJSON.pretty(response))
                } else {
                    let now = Date()
                    let rows = response.items.map { pod in
                        [
                            CtlFormat.shortID(pod.id), CtlFormat.age(nanoseconds: pod.createdAt, now: now),
                            CtlFormat.podState(pod.state), pod.metadata.name, pod.metadata.namespace,
                            String(pod.metadata.attempt), pod.runtimeHandler.isEmpty ? "(default)" : pod.runtimeHandler,
                        ]
                    }
                    CtlOutput.lines(CtlFormat.table(
                        header: ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"], rows: rows))
                }
            }
        }
    }
}

/// `podshim ctl inspectp ID`: PodSandboxStatus, verbose, as JSON.
struct CtlInspectPod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspectp",
        abstract: "Show everything the daemon knows about a pod, as JSON.",
        discussion: """
            The verbose PodSandboxStatus answer: the pod's status, its containers' statuses and the daemon's debug information.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("The pod's id or a unique prefix of it.", valueName: "pod-id"))
    var id: String

    func run() async throws {
        try await CtlReport.run("inspectp", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var request = Runtime_V1_PodSandboxStatusRequest()
                request.podSandboxID = try await session.resolvePod(id)
                request.verbose = true
                let response = try await session.runtime.podSandboxStatus(request, options: session.options)
                CtlOutput.line(try CtlJSON.pretty(response))
            }
        }
    }
}

/// `podshim ctl runp pod.json`: RunPodSandbox.
struct CtlRunPod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runp",
        abstract: "Create and start a pod sandbox from a PodSandboxConfig in JSON; print its id.",
        discussion: """
            The file holds a runtime.v1 PodSandboxConfig in the protobuf JSON mapping, the same shape crictl's pod configs have, e.g.
              {"metadata": {"name": "web", "namespace": "default", "uid": "web-1"}, "logDirectory": "/var/log/podshim/pods/default_web_web-1"}
            Give "-" to read it from stdin.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(name: [.short, .long], help: ArgumentHelp("The runtime handler to run the pod with.", valueName: "handler"))
    var runtime: String?

    @Argument(help: ArgumentHelp("The PodSandboxConfig JSON file.", valueName: "pod.json"))
    var file: String

    func run() async throws {
        try await CtlReport.run("runp", socket: options.socket) {
            var request = Runtime_V1_RunPodSandboxRequest()
            request.config = try CtlJSON.read(Runtime_V1_PodSandboxConfig.self, from: file, what: "PodSandboxConfig")
            request.runtimeHandler = runtime ?? ""
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let response = try await session.runtime.runPodSandbox(request, options: session.options)
                CtlOutput.line(response.podSandboxID)
            }
        }
    }
}

/// `podshim ctl stopp ID...`: StopPodSandbox.
struct CtlStopPods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stopp",
        abstract: "Stop pod sandboxes: their containers, then the sandbox; print each stopped id.",
        discussion: """
            A stopped pod stays listed as NotReady until it is removed with `podshim ctl rmp`. Stopping waits for the containers' grace periods: raise --timeout when they are longer than it.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("Pod ids or unique prefixes.", valueName: "pod-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one pod id") }
    }

    func run() async throws {
        try await CtlReport.run("stopp", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                try await CtlEach.run("stopp", ids: ids, socket: options.socket) { given in
                    var request = Runtime_V1_StopPodSandboxRequest()
                    request.podSandboxID = try await session.resolvePod(given)
                    _ = try await session.runtime.stopPodSandbox(request, options: session.options)
                    CtlOutput.line(request.podSandboxID)
                }
            }
        }
    }
}

/// `podshim ctl rmp ID...`: RemovePodSandbox.
struct CtlRemovePods: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmp",
        abstract: "Remove pod sandboxes and their containers; print each removed id.",
        discussion: """
            A pod that is still Ready is refused unless --force is given; with --force it is stopped and removed in one go (raise --timeout when its containers' grace periods are long).
            """
    )

    @OptionGroup var options: CtlOptions

    @Flag(name: .shortAndLong, help: "Remove pods even when they are still running.")
    var force = false

    @Argument(help: ArgumentHelp("Pod ids or unique prefixes.", valueName: "pod-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one pod id") }
    }

    func run() async throws {
        try await CtlReport.run("rmp", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                try await CtlEach.run("rmp", ids: ids, socket: options.socket) { given in
                    let id = try await session.resolvePod(given)
                    if !force {
                        var statusRequest = Runtime_V1_PodSandboxStatusRequest()
                        statusRequest.podSandboxID = id
                        let status = try await session.runtime.podSandboxStatus(statusRequest, options: session.options)
                        if status.status.state == .sandboxReady {
                            throw CtlError.usage(
                                "pod \(CtlFormat.shortID(id)) is still ready; stop it first (podshim ctl stopp) or use --force")
                        }
                    }
                    var request = Runtime_V1_RemovePodSandboxRequest()
                    request.podSandboxID = id
                    _ = try await session.runtime.removePodSandbox(request, options: session.options)
                    CtlOutput.line(id)
                }
            }
        }
    }
}
