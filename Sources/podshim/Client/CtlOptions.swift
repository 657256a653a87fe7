import ArgumentParser
import Foundation

/// `--socket`: where `podshim serve` listens. Every `podshim ctl` subcommand has it.
struct CtlSocketOptions: ParsableArguments {
    static let defaultSocket = "/run/podshim/podshim.sock"

    @Option(
        name: .customLong("socket"),
        help: ArgumentHelp(
            "The daemon's Unix socket. Default: $PODSHIM_SOCKET if set, else \(CtlSocketOptions.defaultSocket).",
            valueName: "path"))
    var explicitSocket: String?

    /// The socket to use: --socket, else $PODSHIM_SOCKET, else the default.
    var socket: String {
        if let explicitSocket { return explicitSocket }
        if let fromEnvironment = ProcessInfo.processInfo.environment["PODSHIM_SOCKET"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return Self.defaultSocket
    }

    func validate() throws {
        if let explicitSocket, explicitSocket.isEmpty { throw ValidationError("--socket needs a path") }
    }
}

/// `--socket` and `--timeout`: the options of every subcommand whose RPCs are quick.
struct CtlOptions: ParsableArguments {
    @OptionGroup var connection: CtlSocketOptions

    @Option(
        name: .customLong("timeout"),
        help: ArgumentHelp("Give up on each request after this many seconds; 0 waits forever.", valueName: "seconds"))
    var timeoutSeconds: Int = 10

    var socket: String { connection.socket }

    /// The RPC deadline, nil for none.
    var deadline: Duration? { CtlOptions.deadline(seconds: timeoutSeconds) }

    func validate() throws {
        if timeoutSeconds < 0 { throw ValidationError("--timeout must be 0 or more seconds") }
    }

    static func deadline(seconds: Int) -> Duration? {
        seconds > 0 ? .seconds(seconds) : nil
    }
}

/// `-o table|json`.
enum CtlOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

/// `--state` of `podshim ctl pods`.
enum CtlPodStateOption: String, ExpressibleByArgument, CaseIterable {
    case ready
    case notready
}

/// `--state` of `podshim ctl ps`.
enum CtlContainerStateOption: String, ExpressibleByArgument, CaseIterable {
    case created
    case running
    case exited
}
