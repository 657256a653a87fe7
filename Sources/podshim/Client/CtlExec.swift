import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl exec [--timeout N] ID -- CMD...`: ExecSync.
struct CtlExec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running container and exit with its exit status.",
        discussion: """
            The command runs to completion inside the container's namespaces and cgroup; its output is collected by the daemon and then written to our stdout and stderr. There is no stdin and no terminal.

            Options for exec go before the container id; everything after the id (an optional `--` first) is the command.

            With --timeout the daemon kills the command when it runs longer; the request itself is given 10 seconds more.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Kill the command after this many seconds; 0 lets it run as long as it likes.", valueName: "seconds"))
    var commandTimeout: Int64 = 0

    @Argument(help: ArgumentHelp("The container's id or a unique prefix of it.", valueName: "container-id"))
    var id: String

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments.", valueName: "command"))
    var command: [String] = []

    /// The command without the `--` that may separate it from the id.
    var commandLine: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        if commandLine.isEmpty { throw ValidationError("give the command to run after the container id") }
        if commandTimeout < 0 { throw ValidationError("--timeout must be 0 or more seconds") }
    }

    func run() async throws {
        let socket = connection.socket
        try await CtlReport.run("exec", socket: socket) {
            let response = try await CtlSession.with(socket: socket, deadline: .seconds(10)) { session in
                var request = Runtime_V1_ExecSyncRequest()
                request.containerID = try await session.resolveContainer(id)
                request.cmd = commandLine
                request.timeout = commandTimeout
                let deadline: Duration? = commandTimeout > 0 ? .seconds(commandTimeout + 10) : nil
                return try await session.runtime.execSync(request, options: session.options(deadline: deadline))
            }
            CtlOutput.stdout(response.stdout)
            CtlOutput.stderr(response.stderr)
            if response.exitCode != 0 { throw ExitCode(response.exitCode) }
        }
    }
}
