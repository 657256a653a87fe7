import Synchronization
import Foundation
import Glibc
import PodshimSystem

/// Runs a helper program (`/bin/tar`, `/bin/cp`) to completion and collects what it printed.
///
/// The child is started through ``EventLoop/spawn(_:onExit:)``: the event loop owns `waitpid` in podshim,
/// so `Foundation.Process`, which waits for its own children, would lose their exits to it.
/// Output goes to unlinked temporary files rather than pipes, so neither stream can fill up and
/// block the child while the other is being read.
struct HelperCommand {
    /// What a finished helper left behind.
    struct Result {
        var status: ExitStatus
        var stdout: Data
        var stderr: Data

        var succeeded: Bool { status == .exited(code: 0) }
        var stderrText: String { String(decoding: stderr, as: UTF8.self) }
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// The environment helpers run with: messages in English, `gzip` findable for `tar -z`.
    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    /// The program and its arguments, `arguments[0]` being the program's absolute path.
    var arguments: [String]

    init(_ arguments: [String]) { self.arguments = arguments }

    /// How the command reads in error messages.
    var display: String { arguments.joined(separator: " ") }

    /// Runs the command with `stdin` (a file descriptor, or /dev/null when nil) as its input and
    /// waits for it to exit.
    func run(stdin: Int32? = nil) throws(SystemError) -> Result {
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
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = Self.environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }

        let exit = ExitBox()
        let spawnResult: Int32 = EventLoop.shared.spawn({
            var pid: pid_t = 0
            let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
            return (pid: result == 0 ? pid : 0, value: result)
        }, onExit: { status in exit.set(status) })
        guard spawnResult == 0 else {
            throw SystemError("posix_spawn", path: arguments[0], errno: Errno(rawValue: spawnResult))
        }
        let status = exit.wait()
        return Result(status: status, stdout: try Self.readAll(stdoutFD), stderr: try Self.readAll(stderrFD))
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
    }
}
