import ArgumentParser
import Foundation
import GRPCCore

/// A failure `podshim ctl` found on its own side (before, between or after RPCs).
/// Errors the daemon returns stay `RPCError`s; `CtlReport` prints both the same way.
enum CtlError: Error, CustomStringConvertible {
    /// The command line or an input file is wrong.
    case usage(String)
    /// An id prefix or name matched nothing.
    case notFound(String)
    /// The socket does not exist, is not a socket, or nobody answers on it.
    case unreachable(socket: String, reason: String)
    /// The socket is there but we may not use it.
    case forbidden(socket: String)
    /// Anything else, already worded for the user.
    case failed(String)

    var description: String {
        switch self {
        case .usage(let message), .notFound(let message), .failed(let message):
            return message
        case .unreachable(let socket, let reason):
            var reason = Substring(reason)
            while reason.hasSuffix(".") { reason.removeLast() }
            return "cannot reach \(socket) (\(reason)): is `podshim serve` running?"
                + " Use --socket or PODSHIM_SOCKET to name another socket"
        case .forbidden(let socket):
            return "may not use \(socket) (permission denied): run as root, or as a user the socket admits"
        }
    }
}

/// Prints errors as `podshim ctl <sub>: <status code>: <message>` and turns them into exit status 1.
enum CtlReport {
    /// Runs `body`; any error is reported on stderr and becomes `ExitCode(1)`.
    /// An `ExitCode` thrown by `body` (exec passing on its command's status) goes through untouched.
    static func run(_ subcommand: String, socket: String? = nil, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            print(subcommand, error, socket: socket)
            throw ExitCode(1)
        }
    }

    /// Reports one error without exiting, for commands that go on with their other ids.
    static func print(_ subcommand: String, _ error: any Error, socket: String? = nil) {
        CtlOutput.error("podshim ctl \(subcommand): \(message(for: error, socket: socket))")
    }

    /// The text after `podshim ctl <sub>: `.
    static func message(for error: any Error, socket: String?) -> String {
        switch error {
        case let rpc as RPCError:
            let code = CtlFormat.statusCodeName(rpc.code.rawValue)
            if rpc.code == .unavailable, let socket {
                return "\(code): " + CtlError.unreachable(socket: socket, reason: rpc.message).description
            }
            return "\(code): \(rpc.message)"
        case let ctl as CtlError:
            return ctl.description
        default:
            return String(describing: error)
        }
    }
}

/// Unbuffered writes to our stdout and stderr, so streamed output (events, logs --follow)
/// appears at once even through a pipe, and never interleaves out of order.
enum CtlOutput {
    static func line(_ text: String) { write(text + "\n", to: FileHandle.standardOutput) }
    static func lines(_ texts: [String]) {
        guard !texts.isEmpty else { return }
        write(texts.joined(separator: "\n") + "\n", to: FileHandle.standardOutput)
    }
    static func error(_ text: String) { write(text + "\n", to: FileHandle.standardError) }
    static func stdout(_ data: Data) { if !data.isEmpty { FileHandle.standardOutput.write(data) } }
    static func stderr(_ data: Data) { if !data.isEmpty { FileHandle.standardError.write(data) } }

    private static func write(_ text: String, to handle: FileHandle) { handle.write(Data(text.utf8)) }
}
