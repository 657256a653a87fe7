import SystemPackage
import CShims
import Glibc

/// A process we started, addressed through a pidfd so a signal can never reach a recycled PID.
public final class ProcessHandle: Sendable {
    /// The PID in podshim's PID namespace (for display and /proc; never for signals).
    public let pid: pid_t
    /// The pidfd; closed when the handle is released.
    public let pidfd: Int32

    /// Takes ownership of `pidfd`.
    public init(pid: pid_t, pidfd: Int32) {
        self.pid = pid
        self.pidfd = pidfd
    }

    /// Opens a pidfd for `pid`. The pid names the intended process only if nothing can recycle it
    /// in between: true for an unreaped child of ours; for any other process, check its identity
    /// (start time) again *after* opening — the pidfd then pins it (see Recovery).
    public convenience init(opening pid: pid_t) throws(SystemError) {
        let fd = try systemCall("pidfd_open", path: "pid \(pid)") { psh_pidfd_open(pid) }
        self.init(pid: pid, pidfd: fd)
    }

    deinit { close(pidfd) }

    /// Sends `signal` through the pidfd. Returns false when the process has already exited.
    @discardableResult
    public func send(_ signal: Signal) throws(SystemError) -> Bool {
        let result = psh_pidfd_send_signal(pidfd, signal.rawValue)
        if result == -ESRCH { return false }
        if result < 0 {
            throw SystemError("pidfd_send_signal(\(signal.name))", path: "pid \(pid)", negatedErrno: result)
        }
        return true
    }
}
