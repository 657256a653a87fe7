import Synchronization
import Foundation
import Glibc
import CShims

/// Runs a helper program (`/bin/tar`, `/bin/cp`, a CNI plugin) to completion and collects what it
/// printed.
///
/// The child is started through ``EventLoop/spawn(_:onExit:)``: the event loop owns `waitpid` in podshim,
/// so `Foundation.Process`, which waits for its own children, would lose their exits to it.
/// Output goes to unlinked temporary files rather than pipes, so neither stream can fill up and
/// block the child while the other is being read. The child leads a process group of its own, so
/// that a timeout kills what it started too (a CNI plugin's iptables).
public struct HelperCommand: Sendable {
    /// What a finished helper left behind.
    public struct Result: Sendable {
        public var status: ExitStatus
        public var stdout: Data
        public var stderr: Data
        /// Killed because it outran its timeout.
        public var timedOut: Bool

        public var succeeded: Bool { status == .exited(code: 0) && !timedOut }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// The environment helpers run with by default: messages in English, `gzip` findable for `tar -z`.
    public static let defaultEnvironment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    /// The program and its arguments, `arguments[0]` being the program's absolute path.
    public var arguments: [String]
    /// `NAME=value` entries.
    public var environment: [String]

    public init(_ arguments: [String], environment: [String] = HelperCommand.defaultEnvironment) {
        self.arguments = arguments
        self.environment = environment
    }

    /// How the command reads in error messages.
    public var display: String { arguments.joined(separator: " ") }

    /// Runs the command with `input` as its standard input (/dev/null when nil) and waits for it
    /// to exit, or kills it (and its process group) after `timeoutSeconds`.
    public func run(input: [UInt8]?, timeoutSeconds: Double? = nil) throws(SystemError) -> Result {
        guard let input else { return try run(stdin: nil, timeoutSeconds: timeoutSeconds) }
        let fd = try Self.anonymousFile()
        defer { close(fd) }
        var written = 0
        while written < input.count {
            let count = input[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path: "(helper input)", errno: .last)
            }
            written += count
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw SystemError("lseek", path: "(helper input)", errno: .last) }
        return try run(stdin: fd, timeoutSeconds: timeoutSeconds)
    }

    /// Runs the command with `stdin` (a file descriptor, or /dev/null when nil) as its input and
    /// waits for it to exit, or kills it (and its process group) after `timeoutSeconds`.
    public func run(stdin: Int32? = nil, timeoutSeconds: Double? = nil) throws(SystemError) -> Result {
        let stdoutFD = try Self.anonymousFile()
        defer { close(stdoutFD) }
        let stderrFD = try Self.anonymousFile()
        defer { close(stderrFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        let exit = ExitBox()
        let spawned: (result: Int32, pid: pid_t, pidfd: Int32) = EventLoop.shared.spawn({
            var pid: pid_t = 0
            let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
            // Opened before the exit can be registered (so before the loop may reap it): it names
            // this child, and a timeout signals through it, never a recycled PID.
            let pidfd = result == 0 ? psh_pidfd_open(pid) : -1
            return (pid: result == 0 ? pid : 0, value: (result, pid, pidfd))
        }, onExit: { status in exit.set(status) })
        guard spawned.result == 0 else {
            throw SystemError("posix_spawn", path: arguments[0], errno: Errno(rawValue: spawned.result))
        }
        defer { if spawned.pidfd >= 0 { close(spawned.pidfd) } }
        var timedOut = false
        let status: ExitStatus
        if let timeoutSeconds, let finished = exit.wait(seconds: timeoutSeconds) {
            status = finished
        } else if timeoutSeconds != nil {
            timedOut = true
            // The child is unreaped until its exit handler ran (which has not happened): its
            // group id is still its own, so the group is the one it leads.
            if spawned.pidfd >= 0 { _ = psh_pidfd_send_signal(spawned.pidfd, SIGKILL) }
            Glibc.kill(-spawned.pid, SIGKILL)
            status = exit.wait()
        } else {
            status = exit.wait()
        }
        return Result(status: status, stdout: try Self.readAll(stdoutFD), stderr: try Self.readAll(stderrFD),
                      timedOut: timedOut)
    }

    /// A temporary file that is already unlinked: it vanishes when its descriptor is closed.
    private static func anonymousFile() throws(SystemError) -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/podshim-helper-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SystemError("mkstemp", path: NSTemporaryDirectory(), errno: .last) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    private static func readAll(_ fd: Int32) throws(SystemError) -> Data {
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw SystemError("lseek", path: "(helper output)", errno: .last) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path: "(helper output)", errno: .last)
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// The exit status, handed from the event loop thread to the waiting one.
    private final class ExitBox: Sendable {
        private let status = Mutex<ExitStatus?>(nil)
        private let done = DispatchSemaphore(value: 0)

        func set(_ status: ExitStatus) {
            self.status.withLock { $0 = status }
            done.signal()
        }

        /// One waiter.
        func wait() -> ExitStatus {
            done.wait()
            return status.withLock { $0! }
        }

        /// One waiter; nil when `seconds` passed first.
        func wait(seconds: Double) -> ExitStatus? {
            guard done.wait(timeout: .now() + seconds) == .success else { return nil }
            return status.withLock { $0 }
        }
    }
}
