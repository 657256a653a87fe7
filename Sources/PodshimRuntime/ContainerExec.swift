import Synchronization
import Foundation
import Glibc
import PodshimCgroups
import PodshimSystem
import PodshimProcess

/// Runs a command inside a running container (the CRI's ExecSync): the new process joins the
/// container's mount, PID, cgroup, network, IPC and UTS namespaces through its pidfd, is born in
/// its cgroup and gets the container's user, capabilities, no_new_privs and seccomp filter.
public enum ContainerExec {
    /// The outcome of an exec.
    public struct Result: Sendable, Equatable {
        public var exitCode: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// The command outlived its timeout and was killed.
        public var timedOut: Bool
        /// Output beyond ``outputLimit`` was discarded.
        public var truncated: Bool
    }

    /// Why an exec could not run.
    /// What the CRI allows an exec to return per stream: 16 MiB, as containerd caps it.
    public static let outputLimit = 16 << 20

    /// The plan of a process that joins `container`'s namespaces: no new root, no mounts.
    public static func plan(for container: ProcessPlan, argv: [String]) -> ProcessPlan {
        var plan = ProcessPlan(
            joinedNamespaces: [.mount, .cgroup, .network, .ipc, .uts],
            joinsSandboxPIDNamespace: true,
            uid: container.uid, gid: container.gid, supplementaryGroups: container.supplementaryGroups,
            capabilities: container.capabilities, noNewPrivileges: container.noNewPrivileges,
            seccompFilter: container.seccompFilter,
            argv: argv, environment: container.environment, searchPath: container.searchPath,
            workingDirectory: container.workingDirectory)
        plan.oomScoreAdjust = container.oomScoreAdjust
        return plan
    }

    /// Runs `argv` in `container` and waits for it; `timeoutSeconds` 0 = no timeout. Blocks the
    /// calling thread (call it off any async executor).
    ///
    /// The run ends when the command exits, after a short drain of its output (a background child
    /// that keeps stdout open does not hold it to the timeout), when `timeoutSeconds` pass, or when
    /// `cancellation` is cancelled (the client left): the command is then killed.
    public static func run(
        in container: Container, argv: [String], timeoutSeconds: Double, outputLimit: Int = outputLimit,
        cancellation: ExecCancellation? = nil
    ) throws(PodshimError) -> Result {
        let exited = ExitLatch()
        let started: Streaming
        do {
            started = try start(in: container, argv: argv, stdin: false, stdout: true, stderr: true, onExit: { exited.set($0) })
        } catch {
            throw error.podshimError // ExecSync answers an error for a command that cannot run, as containerd's does
        }
        let child = started.process
        // Both asked for, so both there.
        let outRead = started.stdout ?? -1, errRead = started.stderr ?? -1
        defer { close(outRead); close(errRead) }

        let deadline = timeoutSeconds > 0 ? MonotonicInstant.now().advanced(bySeconds: timeoutSeconds) : nil
        var collector = OutputCollector(limit: outputLimit)
        var timedOut = false
        var cancelled = false
        var open = [outRead, errRead]
        /// Once the command has exited: how long its output may still drain.
        var drainUntil: MonotonicInstant?
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if drainUntil == nil { fds.append(pollfd(fd: child.pidfd, events: Int16(POLLIN), revents: 0)) }
            let now = MonotonicInstant.now()
            if cancellation?.isCancelled == true {
                cancelled = true
                break
            }
            var wait: Double = cancellation == nil ? 60_000 : 100 // a cancellation is checked every 100 ms
            var expired = false
            for limit in [deadline, drainUntil].compactMap({ $0 }) {
                let remaining = limit.milliseconds(since: now)
                if remaining <= 0 {
                    expired = true
                    if limit == deadline { timedOut = true }
                }
                wait = min(wait, remaining)
            }
            if expired { break }
            let ready = poll(&fds, nfds_t(fds.count), Int32(wait.rounded(.up)))
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == child.pidfd {
                    // The command exited: what it wrote is in the pipes already; read it, briefly.
                    drainUntil = MonotonicInstant.now().advanced(bySeconds: Self.drainSeconds)
                    continue
                }
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    collector.append(buffer[0..<count], toError: entry.fd == errRead)
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        if timedOut || cancelled {
            _ = try? child.send(.kill) // it may have exited already; the bounded wait below ends either way
        }
        let status = exited.wait(timeoutSeconds: 10)
        if status == nil {
            _ = try? child.send(.kill) // it may have exited already; the bounded wait below ends either way
            _ = exited.wait(timeoutSeconds: 10)
        }
        if cancelled { throw PodshimError(.cancelled, operation: "exec", subject: argv[0], message: "the client went away") }
        return Result(exitCode: status?.code ?? 137, stdout: collector.stdout, stderr: collector.stderr,
                      timedOut: timedOut, truncated: collector.truncated)
    }

    /// How long the output of an exited command may still be read (a background child may hold
    /// its pipes open for ever).
    static let drainSeconds = 0.5
}

/// Set by whoever waits for an exec (the RPC's cancellation handler); the exec checks it.
public final class ExecCancellation: Sendable {
    private let flag = Mutex(false)
    public init() {}
    public var isCancelled: Bool { flag.withLock { $0 } }
    public func cancel() { flag.withLock { $0 = true } }
}

/// Collects two output streams up to a byte limit each.
struct OutputCollector {
    let limit: Int
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var truncated = false

    init(limit: Int) { self.limit = limit }

    mutating func append(_ bytes: ArraySlice<UInt8>, toError: Bool) {
        let current = toError ? stderr.count : stdout.count
        let room = max(0, limit - current)
        if bytes.count > room { truncated = true }
        let kept = bytes.prefix(room)
        if toError { stderr += kept } else { stdout += kept }
    }
}

/// One exit status, set on the event loop thread and awaited by another.
final class ExitLatch: Sendable {
    private let status = Mutex<ExitStatus?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func set(_ value: ExitStatus) {
        status.withLock { $0 = value }
        done.signal()
    }

    /// One waiter: the exit status, or nil when `timeoutSeconds` (monotonic) passed first.
    func wait(timeoutSeconds: Double) -> ExitStatus? {
        if let status = status.withLock({ $0 }) { return status }
        _ = done.wait(timeout: .now() + max(0, timeoutSeconds))
        return status.withLock { $0 }
    }
}

// MARK: - Streaming exec (the CRI's Exec through the streaming server)

extension ContainerExec {
    /// A process started in a container for a streaming session, with podshim's ends of its
    /// pipes (close-on-exec; the caller owns them): stdin to write (when asked for), stdout and
    /// stderr to read (when asked for).
    public struct Streaming: Sendable {
        public var process: ProcessHandle
        public var stdin: Int32?
        public var stdout: Int32?
        public var stderr: Int32?
        /// With a tty: a third descriptor of the terminal's master side, for resizing it.
        public var terminal: Int32?
    }

    /// Why a command could not be started in a container.
    public struct StartError: Error, Sendable, CustomStringConvertible, PodshimErrorConvertible {
        /// The failure as an RPC reports it: `exec in container web: execve /nonexistent: ENOENT`.
        public var podshimError: PodshimError
        /// Set when execve refused the command itself: 127 for a program that is not there, 126
        /// for a file that cannot be executed — the exit status runc, containerd and a shell
        /// report for it. Nil for any other failure (the container's, podshim's, the host's).
        public var commandExitCode: Int32?
        /// For a command that cannot run: why, without the container (`execve /nonexistent: ENOENT`).
        public var reason: String

        init(_ error: PodshimError) {
            podshimError = error
            commandExitCode = nil
            reason = error.description
        }

        init(spawning error: SpawnError, in container: Container) {
            podshimError = PodError("exec in container \(container.name)", error).podshimError
            commandExitCode = error.isExecve ? Self.exitCode(execveErrno: error.errno) : nil
            reason = error.description
        }

        public var description: String { podshimError.description }

        /// What a shell exits with when execve fails with `errno` (bash's rule: not found 127,
        /// found but not executable 126); nil for errors that say nothing about the program (out
        /// of memory, E2BIG, too many open files).
        static func exitCode(execveErrno errno: Errno) -> Int32? {
            switch errno.rawValue {
            case ENOENT: 127
            case EACCES, EPERM, ENOEXEC, EISDIR, ENOTDIR, ELOOP, ENAMETOOLONG, ETXTBSY, ELIBBAD: 126
            default: nil
            }
        }
    }

    /// Starts `argv` in `container` with pipes for the streams asked for (the others are
    /// /dev/null), or with `tty` on a new pseudo-terminal that becomes its controlling terminal
    /// (its output, stderr merged, comes from the master side; TERM=xterm unless the container
    /// sets TERM); `onExit` gets its exit status (on the event loop thread). A command execve
    /// refuses fails with a ``StartError`` whose `commandExitCode` is set (nothing was started,
    /// no descriptor is left open; `onExit` still gets the failed child's 127).
    public static func start(
        in container: Container, argv: [String], stdin: Bool, stdout: Bool, stderr: Bool, tty: Bool = false,
        onExit: @escaping @Sendable (ExitStatus) -> Void
    ) throws(StartError) -> Streaming {
        guard !argv.isEmpty, !argv[0].isEmpty else {
            throw StartError(PodshimError(.invalidArgument, subject: "cmd", message: "required"))
        }
        guard let process = container.process, container.isRunning else {
            throw StartError(PodshimError(.failedPrecondition, message: "container \(container.name) is not running"))
        }
        if tty { return try startOnTerminal(in: container, sandbox: process, argv: argv, stdin: stdin, onExit: onExit) }
        var opened: [Int32] = []
        func pipe() throws(StartError) -> (read: Int32, write: Int32) {
            do {
                let ends = try Kernel.pipe()
                opened += [ends.read, ends.write]
                return ends
            } catch {
                for fd in opened { close(fd) }
                throw StartError(error.podshimError)
            }
        }
        let input = stdin ? try pipe() : nil
        let output = stdout ? try pipe() : nil
        let error = stderr ? try pipe() : nil
        let child: ProcessHandle
        do {
            child = try Spawner.spawn(
                plan(for: container.plan, argv: argv), sandbox: process,
                stdio: .init(input: input?.read ?? -1, output: output?.write ?? -1, error: error?.write ?? -1),
                cgroup: container.cgroup, setupTimeout: 30, onExit: onExit)
        } catch {
            for fd in opened { close(fd) }
            throw StartError(spawning: error, in: container)
        }
        // The child's ends are its own now.
        for fd in [input?.read, output?.write, error?.write].compactMap({ $0 }) { close(fd) }
        return Streaming(process: child, stdin: input?.write, stdout: output?.read, stderr: error?.read)
    }

    private static func startOnTerminal(
        in container: Container, sandbox: ProcessHandle, argv: [String], stdin: Bool,
        onExit: @escaping @Sendable (ExitStatus) -> Void
    ) throws(StartError) -> Streaming {
        let terminal: (master: Int32, slave: Int32)
        do {
            terminal = try Kernel.pty()
        } catch {
            throw StartError(error.podshimError)
        }
        var fds = [terminal.master]
        func duplicate() throws(StartError) -> Int32 {
            let fd = fcntl(terminal.master, F_DUPFD_CLOEXEC, 3)
            guard fd >= 0 else {
                let failure = PodshimError(.resourceExhausted, operation: "dup", subject: "terminal", errno: .last)
                for fd in fds { close(fd) }
                close(terminal.slave)
                throw StartError(failure)
            }
            fds.append(fd)
            return fd
        }
        let input = stdin ? try duplicate() : nil
        let resize = try duplicate()
        var plan = plan(for: container.plan, argv: argv)
        plan.controllingTerminal = true
        if !plan.environment.contains(where: { $0.hasPrefix("TERM=") }) { plan.environment.append("TERM=xterm") }
        let child: ProcessHandle
        do {
            child = try Spawner.spawn(
                plan, sandbox: sandbox, stdio: .init(input: terminal.slave, output: terminal.slave, error: terminal.slave),
                cgroup: container.cgroup, setupTimeout: 30, onExit: onExit)
        } catch {
            for fd in fds { close(fd) }
            close(terminal.slave)
            throw StartError(spawning: error, in: container)
        }
        close(terminal.slave)
        return Streaming(process: child, stdin: input, stdout: terminal.master, stderr: nil, terminal: resize)
    }
}
