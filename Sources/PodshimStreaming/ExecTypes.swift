import Foundation
import NIOCore
import NIOPosix
import PodshimSystem
import Glibc

/// A process an exec session runs: podshim's ends of its pipes (the session owns them) and a way
/// to kill it (through its pidfd).
public struct ExecProcess: Sendable {
    public var stdin: Int32?
    public var stdout: Int32?
    public var stderr: Int32?
    /// With a tty: a descriptor of the terminal's master side, to resize it (the session closes it).
    public var terminal: Int32?
    public var kill: @Sendable () -> Void
    /// Called once when the client's stdin has ended (or the client left) and `stdin` is closed:
    /// an attach to a `stdin_once` container closes the container's stdin for good there.
    public var stdinEnded: (@Sendable () -> Void)?

    public init(stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32? = nil,
                stdinEnded: (@Sendable () -> Void)? = nil, kill: @escaping @Sendable () -> Void) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self.stdinEnded = stdinEnded
        self.kill = kill
    }
}

/// Thrown by ``ExecStreamRequest/start`` when the command itself cannot run — no such program, or
/// a file that cannot be executed: the session reports it the way runc and a shell do, as the
/// command's exit with `exitCode` (127 not found, 126 not executable), `message` on the client's
/// stderr (or terminal) and in the status; not as a failure of the exec.
public struct ExecCommandNotRunnable: Error, Sendable, CustomStringConvertible {
    public var exitCode: Int32
    /// Why, in words: `execve /nonexistent: ENOENT`.
    public var message: String

    public init(exitCode: Int32, message: String) {
        self.exitCode = exitCode
        self.message = message
    }

    public var description: String { "\(message) (exit status \(exitCode))" }
}

/// An Exec or Attach the CRI accepted: which streams the client asked for, and how to start the
/// process or attach to it (called once the client's streams are all there; `onExit` gets the exit
/// status — for an attach, called when the container's output has ended).
public struct ExecStreamRequest: Sendable {
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool
    /// An attach to a container's own process: the session ends with Success (as the kubelet's own
    /// attach does), and a client that leaves does not take the process with it.
    public var attach: Bool
    /// Throws ``ExecCommandNotRunnable`` for a command that cannot run; any other error ends the
    /// session with an InternalError status carrying its text.
    public var start: @Sendable (_ onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> ExecProcess

    public init(stdin: Bool, stdout: Bool, stderr: Bool, tty: Bool, attach: Bool = false,
                start: @escaping @Sendable (_ onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> ExecProcess) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.attach = attach
        self.start = start
    }
}

