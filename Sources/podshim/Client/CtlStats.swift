import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl stats [ID]`: ContainerStats for one container, ListContainerStats otherwise.
struct CtlStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show containers' resource usage: CPU time used and memory working set.",
        discussion: """
            CPU TIME is the cumulative CPU time (usage_core_nano_seconds) and MEMORY the working set (working_set_bytes), both read from the container's cgroup by the daemon; -o json shows the exact numbers and everything else the daemon reports.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(help: ArgumentHelp("Only containers of this pod (id or unique prefix).", valueName: "pod-id"))
    var pod: String?

    @Option(help: ArgumentHelp("Only containers with this label (repeat for several; all must match).", valueName: "key=value"))
    var label: [String] = []

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    @Argument(help: ArgumentHelp("One container's id or a unique prefix of it; default: every container.", valueName: "container-id"))
    var id: String?

    func validate() throws {
        if id != nil, pod != nil || !label.isEmpty {
            throw ValidationError("--pod and --label select containers; do not combine them with a container id")
        }
    }

    func run() async throws {
        try await CtlReport.run("stats", socket: options.socket) {
            let selector = try CtlFormat.labelSelector(label)
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                var stats: [Runtime_V1_ContainerStats]
                if let id {
                    var request = Runtime_V1_ContainerStatsRequest()
                    request.containerID = try await session.resolveContainer(id)
                    let response = try await session.runtime.containerStats(request, options: session.options)
                    if output == .json {
                        CtlOutput.line(try CtlJSON.pretty(response))
                        return
                    }
                    stats = [response.stats]
                } else {
                    var request = Runtime_V1_ListContainerStatsRequest()
                    request.filter.labelSelector = selector
                    if let pod { request.filter.podSandboxID = try await session.resolvePod(pod) }
                    var response = try await session.runtime.listContainerStats(request, options: session.options)
                    response.stats.sort { $0.attributes.metadata.name < $1.attributes.metadata.name }
                    if output == .json {
                        CtlOutput.line(try CtlJSON.pretty(response))
                        return
                    }
                    stats = response.stats
                }
                let rows = stats.map { entry in
                    [
                        CtlFormat.shortID(entry.attributes.id), entry.attributes.metadata.name,
                        entry.cpu.hasUsageCoreNanoSeconds
                            ? CtlFormat.cpuTime(nanoseconds: entry.cpu.usageCoreNanoSeconds.value) : "-",
                        entry.memory.hasWorkingSetBytes ? CtlFormat.bytes(entry.memory.workingSetBytes.value) : "-",
                    ]
                }
                CtlOutput.lines(CtlFormat.table(header: ["CONTAINER", "NAME", "CPU TIME", "MEMORY"], rows: rows))
            }
        }
    }
}
