/// How a process ended.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    case exited(code: Int32)
    case signaled(Signal, coreDumped: Bool)

    /// From a status in waitpid's format (as /proc/<pid>/stat and PIDFD_INFO_EXIT give it).
    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        self = signal == 0 ? .exited(code: (status >> 8) & 0xff)
            : .signaled(Signal(rawValue: signal), coreDumped: status & 0x80 != 0)
    }

    /// The shell convention containers use: the exit code, or 128 + signal number.
    public var code: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal, _): return 128 + signal.rawValue
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signaled(let signal, let core):
            return "killed by \(signal.name) (exit code \(code))" + (core ? ", core dumped" : "")
        }
    }
}
