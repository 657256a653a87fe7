import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl attach [-i] [-t] ID`: Attach and its streaming session (``CtlRemoteCommand``).
struct CtlAttach: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach to a running container's own process: its output, and with -i our stdin.",
        discussion: """
            Output the container prints from now on is copied to our stdout and stderr (it still reaches the container's log too); nothing printed before is shown. With -i our stdin goes to the container's stdin (the container must have been created with stdin); its end closes the container's stdin only for a stdin_once container.

            -t must be given exactly when the container was created with a terminal. With -i -t and our stdin a terminal, ours is switched to raw mode for the session (every key, Ctrl-C included, goes to the container) and the container's window size follows ours. There is no detach key: the session ends when the container's process exits (status 0), or when ctl is ended by a signal, which leaves the container running.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Flag(name: [.customShort("i"), .customLong("stdin")], help: "Pass our stdin to the container's stdin.")
    var stdin = false

    @Flag(name: [.customShort("t"), .customLong("tty")], help: "The container has a terminal: attach to it.")
    var tty = false

    @Argument(help: ArgumentHelp("The container's id or a unique prefix of it.", valueName: "container-id"))
    var id: String

    func run() async throws {
        let socket = connection.socket
        try await CtlReport.run("attach", socket: socket) {
            let setup = CtlTerminalSetup.decide(stdin: stdin, tty: tty, keepTTY: true)
            if let notice = setup.notice { CtlOutput.error("podshim ctl attach: \(notice)") }
            let url = try await CtlSession.with(socket: socket, deadline: .seconds(10)) { session in
                var request = Runtime_V1_AttachRequest()
                request.containerID = try await session.resolveContainer(id)
                request.stdin = stdin
                request.tty = tty
                request.stdout = true
                request.stderr = !tty // a terminal merges stderr into stdout
                return try await session.runtime.attach(request, options: session.options).url
            }
            let status = try await CtlRemoteCommand.run(url: url, stdin: stdin, setup: setup)
            // An attach ends with Success; a failure is an error with the server's message.
            let code = try status.exitCode()
            if code != 0 { throw ExitCode(code) }
        }
    }
}
