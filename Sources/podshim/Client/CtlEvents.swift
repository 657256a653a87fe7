import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl events`: the GetContainerEvents stream.
struct CtlEvents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print container events (created, started, stopped, deleted) as they happen.",
        discussion: """
            One line per event until the daemon ends the stream or ctl is interrupted: local time, event, container id, pod id, container name. With -o json each event is one line of JSON holding the whole event, including the pod's and its containers' statuses after it.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Option(name: .shortAndLong, help: "Output format.")
    var output: CtlOutputFormat = .table

    func run() async throws {
        let socket = connection.socket
        let output = output
        try await CtlReport.run("events", socket: socket) {
            try await CtlSession.with(socket: socket, deadline: nil) { session in
                if output == .table {
                    CtlOutput.line(Self.line(time: "TIME", event: "EVENT", container: "CONTAINER", pod: "POD ID", name: "NAME"))
                }
                try await session.runtime.getContainerEvents(
                    Runtime_V1_GetEventsRequest(), options: session.options
                ) { response in
                    for try await event in response.messages {
                        if output == .json {
                            CtlOutput.line(try CtlJSON.compact(event))
                            continue
                        }
                        let name = event.containersStatuses.first { $0.id == event.containerID }?.metadata.name ?? ""
                        CtlOutput.line(Self.line(
                            time: CtlFormat.wallClock(nanoseconds: event.createdAt),
                            event: CtlFormat.eventType(event.containerEventType),
                            container: CtlFormat.shortID(event.containerID),
                            pod: CtlFormat.shortID(event.podSandboxStatus.id), name: name))
                    }
                }
            }
        }
    }

    /// Fixed-width columns, since the rows arrive one at a time.
    static func line(time: String, event: String, container: String, pod: String, name: String) -> String {
        func pad(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(1, width - text.count + 3))
        }
        return pad(time, 23) + pad(event, 7) + pad(container, CtlFormat.shortIDLength)
            + pad(pod, CtlFormat.shortIDLength) + name
    }
}
