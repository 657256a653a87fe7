import ArgumentParser
import PodshimCRI

/// `podshim ctl version`: what the daemon says it is.
struct CtlVersion: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Show the runtime's name and version and the CRI API version it serves."
    )

    @OptionGroup var options: CtlOptions

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        try await CtlReport.run("version", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var request = Runtime_V1_VersionRequest()
                request.version = "v1"
                let response = try await session.runtime.version(request, options: session.options)
                switch output {
                case .json:
                    CtlOutput.line(try CtlJSON.pretty(response))
                case .table:
                    CtlOutput.lines(CtlFormat.pairs([
                        ("Runtime", response.runtimeName),
                        ("Runtime version", response.runtimeVersion),
                        ("CRI API version", response.runtimeApiVersion),
                        ("CRI version", response.version),
                    ]))
                }
            }
        }
    }
}

/// `podshim ctl info`: the Status RPC, with the runtime's conditions.
struct CtlInfo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show whether the runtime is ready: its conditions, handlers and features.",
        discussion: """
            RuntimeReady and NetworkReady are the conditions the kubelet waits for; the exit status is 1 when any condition is false. With -o json the whole verbose Status answer is printed, including the daemon's free-form debug information.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        try await CtlReport.run("info", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var request = Runtime_V1_StatusRequest()
                request.verbose = output == .json
                let response = try await session.runtime.status(request, options: session.options)
                if output == .json {
                    CtlOutput.line(try CtlJSON.pretty(response))
                } else {
                    showTables(response)
                }
                let notReady = response.status.conditions.filter { !$0.status }.map(\.type)
                if !notReady.isEmpty {
                    CtlOutput.error("podshim ctl info: not ready: \(notReady.joined(separator: ", "))")
                    throw ExitCode(1)
                }
            }
        }
    }

    private func showTables(_ response: Runtime_V1_StatusResponse) {
        let conditions = response.status.conditions.map { condition in
            [condition.type, condition.status ? "True" : "False", condition.reason, condition.message]
        }
        CtlOutput.lines(CtlFormat.table(header: ["CONDITION", "STATUS", "REASON", "MESSAGE"], rows: conditions))
        if !response.runtimeHandlers.isEmpty {
            let handlers = response.runtimeHandlers.map { handler in
                [
                    handler.name.isEmpty ? "(default)" : handler.name,
                    yesNo(handler.features.recursiveReadOnlyMounts),
                    yesNo(handler.features.userNamespaces),
                ]
            }
            CtlOutput.line("")
            CtlOutput.lines(CtlFormat.table(
                header: ["HANDLER", "RECURSIVE READ-ONLY MOUNTS", "USER NAMESPACES"], rows: handlers))
        }
        if response.hasFeatures {
            let features = response.features
            CtlOutput.line("")
            CtlOutput.lines(CtlFormat.table(header: ["FEATURE", "SUPPORTED"], rows: [
                ["supplemental groups policy", yesNo(features.supplementalGroupsPolicy)],
                ["user namespaces with host network", yesNo(features.userNamespacesHostNetwork)],
                ["mount options", yesNo(features.mountOptions)],
            ]))
        }
    }

    private func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }
}
