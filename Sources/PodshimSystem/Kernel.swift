import CShims
import Glibc

/// The few raw calls that code above PodshimSystem needs, so that this target stays the only
/// importer of CShims outside the spawn path.
public enum Kernel {
    /// A close-on-exec pipe: (read end, write end).
    /// A pseudo-terminal pair, both ends close-on-exec.
    public static func pty() throws(SystemError) -> (master: Int32, slave: Int32) {
        var pair: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &pair) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { psh_pty_open($0) }
        }
        if result < 0 { throw SystemError("posix_openpt", negatedErrno: result) }
        return (pair.0, pair.1)
    }

    /// Sets a terminal's size (rows, columns).
    public static func resizeTerminal(_ fd: Int32, rows: UInt16, columns: UInt16) throws(SystemError) {
        let result = psh_pty_resize(fd, rows, columns)
        if result < 0 { throw SystemError("ioctl TIOCSWINSZ", negatedErrno: result) }
    }

    public static func pipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var pair: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &pair) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { psh_pipe_cloexec($0) }
        }
        if result < 0 { throw SystemError("pipe2", negatedErrno: result) }
        return (pair.0, pair.1)
    }

    /// Waits up to `milliseconds` for `fd` to become readable (a pidfd: the process exited).
    /// True when it did.
    @discardableResult
    public static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        psh_poll_readable(fd, milliseconds) > 0
    }

    /// Moves the calling thread into the network namespace of the process behind `pidfd`.
    public static func joinNetworkNamespace(of pidfd: Int32) throws(SystemError) {
        let result = psh_setns(pidfd, psh_clone_newnet)
        if result != 0 { throw SystemError("setns(net)", path: "the pod", negatedErrno: result) }
    }
}

extension ProcessHandle {
    /// How the process ended, read from its pidfd after someone else reaped it (Linux ≥ 6.15,
    /// PIDFD_INFO_EXIT): `.some` then, `.notYet` while it is unreaped (running or a zombie),
    /// `.none` when the kernel cannot say. One look; callers wait (see `Readoption`).
    public func exitStatusIfReaped() -> ReapedStatus {
        var status: Int32 = 0
        let result = psh_pidfd_exit_status(pidfd, &status)
        if result == -EAGAIN { return .notYet }
        guard result == 0 else { return .none }
        return .some(ExitStatus(waitStatus: status))
    }

    /// What one look at a pidfd says about its process's exit.
    public enum ReapedStatus: Sendable {
        case some(ExitStatus)
        case notYet
        case none
    }
}
