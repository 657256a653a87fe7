import Glibc
import Synchronization
import PodshimSystem

/// A container's stdin as podshim holds it for attach sessions: the write end of its stdin pipe,
/// or (with a tty) the master side of its terminal.
///
/// The container never reads EOF while podshim or the pod's pause process (which keeps a copy, so
/// a restart of podshim neither closes nor loses it) holds the writer. Each attach session writes
/// through a copy of its own; with `stdinOnce` the first session that ends closes the stdin for
/// good (``closeForGood()``), and the container then reads EOF. As containerd does, a terminal is
/// never closed that way (closing a terminal's master hangs up the container's session): with a
/// tty, `stdinOnce` has no effect.
public final class ContainerInput: Sendable {
    /// True when this is the master side of the container's terminal.
    public let terminal: Bool
    /// `stdinOnce` (ignored with a terminal, see above).
    public let once: Bool
    private let descriptor: Mutex<Int32>

    /// Takes ownership of `fd`.
    public init(owning fd: Int32, terminal: Bool, once: Bool) {
        self.terminal = terminal
        self.once = once
        descriptor = Mutex(fd)
    }

    deinit {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    /// The descriptor itself (for the pause process to hold a copy of); -1 once closed.
    public var fd: Int32 { descriptor.withLock { $0 } }

    /// Whether it is still open.
    public var isOpen: Bool { fd >= 0 }

    /// A copy for one attach session to write through (close-on-exec, owned by the caller); nil once
    /// closed for good.
    public func sessionDescriptor() throws(SystemError) -> Int32? {
        try descriptor.withLock { (fd: inout Int32) throws(SystemError) -> Int32? in
            guard fd >= 0 else { return nil }
            return try libcCall("fcntl(F_DUPFD_CLOEXEC)", path: "container stdin") { fcntl(fd, F_DUPFD_CLOEXEC, 3) }
        }
    }

    /// Whether a session that ended closes the stdin for good (`stdinOnce` without a terminal).
    public var closesAfterFirstSession: Bool { once && !terminal }

    /// Closes podshim's writer (the caller has the pause process release its copy too). Returns
    /// false when it was closed already.
    @discardableResult
    public func closeForGood() -> Bool {
        let fd: Int32 = descriptor.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }
}
