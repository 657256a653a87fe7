import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl ps`: ListContainers.
struct CtlContainers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List containers, newest first; only running ones unless -a or --state is given.",
        discussion: """
            --pod, --state and --label are applied by the daemon; --name by ctl.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(help: ArgumentHelp("Only containers of this pod (id or unique prefix).", valueName: "pod-id"))
    var pod: String?

    @Option(help: "Only containers in this state.")
    var state: CtlContainerStateOption?

    @Option(help: ArgumentHelp("Only containers whose name contains this text.", valueName: "text"))
    var name: String?

    @Option(help: ArgumentHelp("Only containers with this label (repeat for several; all must match).", valueName: "key=value"))
    var label: [String] = []

    @Flag(name: .shortAndLong, help: "Show containers in every state, not only running ones.")
    var all = false

    @Flag(name: .short, help: "Print only the full container ids, one a line.")
    var quiet = false

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        try await CtlReport.run("ps", socket: options.socket) {
            var filter = Runtime_V1_ContainerFilter()
            filter.labelSelector = try CtlFormat.labelSelector(label)
            switch state {
            case .created?: filter.state.state = .containerCreated
            case .running?: filter.state.state = .containerRunning
            case .exited?: filter.state.state = .containerExited
            case nil: if !all { filter.state.state = .containerRunning }
            }
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                if let pod { filter.podSandboxID = try await session.resolvePod(pod) }
                var request = Runtime_V1_ListContainersRequest()
                request.filter = filter
                var response = try await session.runtime.listContainers(request, options: session.options)
                response.containers = response.containers
                    .filter { container in name.map { container.metadata.name.contains($0) } ?? true }
                    .sorted { $0.createdAt > $1.createdAt }
                if quiet {
                    CtlOutput.lines(response.containers.map(\.id))
                    return
                }
                if output == .json {
                    CtlOutput.line(try CtlJSON.pretty(response))
                    return
                }
                let podNames = try await session.podNames()
                let now = Date()
                let rows = response.containers.map { container in
                    [
                        CtlFormat.shortID(container.id), Self.image(of: container),
                        CtlFormat.age(nanoseconds: container.createdAt, now: now),
                        CtlFormat.containerState(container.state), container.metadata.name,
                        String(container.metadata.attempt), CtlFormat.shortID(container.podSandboxID),
                        podNames[container.podSandboxID] ?? "",
                    ]
                }
                CtlOutput.lines(CtlFormat.table(
                    header: ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"], rows: rows))
            }
        }
    }

    /// The image as the user named it; a bare digest is shortened like an id.
    static func image(of container: Runtime_V1_Container) -> String {
        let image = container.image.image.isEmpty ? container.imageRef : container.image.image
        return image.hasPrefix("sha256:") ? CtlFormat.shortID(image) : image
    }
}

/// `podshim ctl inspect ID`: ContainerStatus, verbose, as JSON.
struct CtlInspectContainer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show everything the daemon knows about a container, as JSON.",
        discussion: """
            The verbose ContainerStatus answer: state, times, exit code and reason, mounts, log path, resources, and the daemon's debug information.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("The container's id or a unique prefix of it.", valueName: "container-id"))
    var id: String

    func run() async throws {
        try await CtlReport.run("inspect", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var request = Runtime_V1_ContainerStatusRequest()
                request.containerID = try await session.resolveContainer(id)
                request.verbose = true
                let response = try await session.runtime.containerStatus(request, options: session.options)
                CtlOutput.line(try CtlJSON.pretty(response))
            }
        }
    }
}

/// `podshim ctl create POD_ID container.json pod.json`: CreateContainer.
struct CtlCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a container in a pod from a ContainerConfig in JSON; print its id.",
        discussion: """
            container.json holds a runtime.v1 ContainerConfig and pod.json the PodSandboxConfig the pod was run with, both in the protobuf JSON mapping, e.g.
              {"metadata": {"name": "app"}, "image": {"image": "busybox"}, "command": ["sleep", "3600"], "logPath": "app/0.log"}
            The container is created, not started: follow with `podshim ctl start`.
            """
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("The pod's id or a unique prefix of it.", valueName: "pod-id"))
    var pod: String

    @Argument(help: ArgumentHelp("The ContainerConfig JSON file.", valueName: "container.json"))
    var containerConfig: String

    @Argument(help: ArgumentHelp("The PodSandboxConfig JSON file.", valueName: "pod.json"))
    var podConfig: String

    func validate() throws {
        if containerConfig == "-" && podConfig == "-" { throw ValidationError("only one of the files can be stdin (-)") }
    }

    func run() async throws {
        try await CtlReport.run("create", socket: options.socket) {
            var request = Runtime_V1_CreateContainerRequest()
            request.config = try CtlJSON.read(Runtime_V1_ContainerConfig.self, from: containerConfig, what: "ContainerConfig")
            request.sandboxConfig = try CtlJSON.read(Runtime_V1_PodSandboxConfig.self, from: podConfig, what: "PodSandboxConfig")
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                request.podSandboxID = try await session.resolvePod(pod)
                let response = try await session.runtime.createContainer(request, options: session.options)
                CtlOutput.line(response.containerID)
            }
        }
    }
}

/// `podshim ctl start ID...`: StartContainer.
struct CtlStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start created containers; print each started id."
    )

    @OptionGroup var options: CtlOptions

    @Argument(help: ArgumentHelp("Container ids or unique prefixes.", valueName: "container-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one container id") }
    }

    func run() async throws {
        try await CtlReport.run("start", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                try await CtlEach.run("start", ids: ids, socket: options.socket) { given in
                    var request = Runtime_V1_StartContainerRequest()
                    request.containerID = try await session.resolveContainer(given)
                    _ = try await session.runtime.startContainer(request, options: session.options)
                    CtlOutput.line(request.containerID)
                }
            }
        }
    }
}

/// `podshim ctl stop [--timeout N] ID...`: StopContainer.
struct CtlStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop running containers; print each stopped id.",
        discussion: """
            Each container gets its stop signal (SIGTERM unless its image or config says otherwise) and is killed when the grace period ends. Here --timeout is that grace period; the request itself is given 10 seconds more.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Seconds between the stop signal and SIGKILL; 0 kills at once.", valueName: "seconds"))
    var grace: Int64 = 10

    @Argument(help: ArgumentHelp("Container ids or unique prefixes.", valueName: "container-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one container id") }
        if grace < 0 { throw ValidationError("--timeout must be 0 or more seconds") }
    }

    func run() async throws {
        let socket = connection.socket
        try await CtlReport.run("stop", socket: socket) {
            try await CtlSession.with(socket: socket, deadline: .seconds(10)) { session in
                try await CtlEach.run("stop", ids: ids, socket: socket) { given in
                    var request = Runtime_V1_StopContainerRequest()
                    request.containerID = try await session.resolveContainer(given)
                    request.timeout = grace
                    _ = try await session.runtime.stopContainer(
                        request, options: session.options(deadline: .seconds(grace + 10)))
                    CtlOutput.line(request.containerID)
                }
            }
        }
    }
}

/// `podshim ctl rm ID...`: RemoveContainer.
struct CtlRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Remove containers; print each removed id.",
        discussion: """
            A running container is refused unless --force is given; with --force it is killed and removed.
            """
    )

    @OptionGroup var options: CtlOptions

    @Flag(name: .shortAndLong, help: "Remove containers even when they are running.")
    var force = false

    @Argument(help: ArgumentHelp("Container ids or unique prefixes.", valueName: "container-id"))
    var ids: [String]

    func validate() throws {
        if ids.isEmpty { throw ValidationError("give at least one container id") }
    }

    func run() async throws {
        try await CtlReport.run("rm", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                try await CtlEach.run("rm", ids: ids, socket: options.socket) { given in
                    let id = try await session.resolveContainer(given)
                    if !force {
                        var statusRequest = Runtime_V1_ContainerStatusRequest()
                        statusRequest.containerID = id
                        let status = try await session.runtime.containerStatus(statusRequest, options: session.options)
                        if status.status.state == .containerRunning {
                            throw CtlError.usage(
                                "container \(CtlFormat.shortID(id)) is running; stop it first (podshim ctl stop) or use --force")
                        }
                    }
                    var request = Runtime_V1_RemoveContainerRequest()
                    request.containerID = id
                    _ = try await session.runtime.removeContainer(request, options: session.options)
                    CtlOutput.line(id)
                }
            }
        }
    }
}
