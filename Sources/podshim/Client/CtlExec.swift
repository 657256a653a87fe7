import ArgumentParser
import Foundation
import PodshimCRI

/// `podshim ctl exec [--timeout N] ID -- CMD...`: ExecSync; with -i or -t, Exec and its
/// streaming session (``CtlRemoteCommand``).
struct CtlExec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command in a running container and exit with its exit status.",
        discussion: """
            Without -i and -t the command runs to completion inside the container's namespaces and cgroup; its output is collected by the daemon and then written to our stdout and stderr. There is no stdin and no terminal.

            With -i or -t the command's input and output are streamed while it runs, over the daemon's streaming server (the protocol a kubelet and crictl speak: SPDY/3.1 with v4.channel.k8s.io). -i passes our stdin on (its end closes the command's stdin). -t runs the command on a terminal (stderr then arrives on stdout); with -i and our stdin a terminal, ours is switched to raw mode for the session, so every key, Ctrl-C included, goes to the command, and its window size follows ours. With -i -t and a stdin that is not a terminal, the command runs without a terminal, as kubectl does.

            Options for exec go before the container id; everything after the id (an optional `--` first) is the command.

            With --timeout the daemon kills the command when it runs longer; the request itself is given 10 seconds more.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Flag(name: [.customShort("i"), .customLong("stdin")], help: "Pass our stdin to the command while it runs.")
    var stdin = false

    @Flag(name: [.customShort("t"), .customLong("tty")], help: "Run the command on a terminal.")
    var tty = false

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
        if (stdin || tty) && commandTimeout != 0 { throw ValidationError("--timeout is for commands run without -i and -t") }
    }

    func run() async throws {
        if stdin || tty { return try await runStreaming() }
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

    /// Exec: the daemon's streaming URL for the command, then the session on it.
    private func runStreaming() async throws {
        let socket = connection.socket
        try await CtlReport.run("exec", socket: socket) {
            let setup = CtlTerminalSetup.decide(stdin: stdin, tty: tty, keepTTY: false)
            if let notice = setup.notice { CtlOutput.error("podshim ctl exec: \(notice)") }
            let url = try await CtlSession.with(socket: socket, deadline: .seconds(10)) { session in
                var request = Runtime_V1_ExecRequest()
                request.containerID = try await session.resolveContainer(id)
                request.cmd = commandLine
                request.stdin = stdin
                request.stdout = true
                request.stderr = !setup.tty // a terminal merges stderr into stdout
                request.tty = setup.tty
                return try await session.runtime.exec(request, options: session.options).url
            }
            let status = try await CtlRemoteCommand.run(url: url, stdin: stdin, setup: setup)
            let code = try status.exitCode()
            if code != 0 { throw ExitCode(code) }
        }
    }
}
