import ArgumentParser
import Foundation
import Glibc
import Logging
import PodshimDaemon
import PodshimRuntime

/// `podshim serve`: the long-running CRI daemon.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the Kubernetes CRI (runtime.v1, gRPC) on a Unix socket.",
        discussion: """
            A node agent (a kubelet, crictl, or `podshim ctl`) drives pods through the socket. The socket is created with mode 0660, owned by root and --socket-group; every connecting peer is checked with SO_PEERCRED (root or a member of the group), others are disconnected. A stale socket left by a crashed daemon is replaced; a live daemon's socket is never taken.

            Every sandbox and container is recorded atomically under <state-dir>/cri. SIGTERM or SIGINT stops the daemon and leaves the pods running; started again with the same --state-dir, podshim re-adopts them (PID and start time must match) and reports those that vanished meanwhile as exited with reason Unknown. This holds after SIGKILL too.

            Images come from the local store (--image-dir); PullImage imports a local directory or OCI image layout and never contacts a registry.
            """
    )

    @Option(help: ArgumentHelp("The Unix socket to serve on.", valueName: "path"))
    var socket = "/run/podshim/podshim.sock"

    @Option(help: ArgumentHelp("A group (name or gid) whose members may use the socket besides root.", valueName: "group"))
    var socketGroup: String?

    @OptionGroup var host: HostOptions

    func run() async throws {
        guard getuid() == 0 else {
            FileHandle.standardError.write(Data("podshim serve: must run as root\n".utf8))
            throw ExitCode(1)
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let options = Daemon.Options(
            socketPath: socket.hasPrefix("/") ? socket : FileManager.default.currentDirectoryPath + "/" + socket,
            socketGroup: socketGroup, configuration: host.runtimeConfiguration,
            version: Podshim.configuration.version)
        do {
            try await Daemon(options: options).run()
        } catch let error as Daemon.StartError {
            FileHandle.standardError.write(Data("podshim serve: \(error.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}
