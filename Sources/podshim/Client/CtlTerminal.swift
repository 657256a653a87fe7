import Dispatch
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How an exec or attach session uses our terminal, decided from -i, -t and what our stdin and
/// stdout are.
struct CtlTerminalSetup: Sendable {
    /// Ask the runtime for a terminal.
    var tty = false
    /// Switch our stdin to raw mode for the session (-i and -t with stdin a terminal).
    var raw = false
    /// The terminal whose size is sent on the resize stream (stdout, else stdin), if any.
    var sizeSource: Int32?
    /// Why -t is not honoured fully, for one line on stderr.
    var notice: String?

    /// `keepTTY`: an attach must ask for the terminal the container has, whatever our stdin is;
    /// an exec without a terminal of ours runs without one (as kubectl does).
    static func decide(stdin: Bool, tty: Bool, keepTTY: Bool) -> CtlTerminalSetup {
        guard tty else { return CtlTerminalSetup() }
        let stdinIsTerminal = isatty(STDIN_FILENO) == 1
        if stdin && !stdinIsTerminal {
            if !keepTTY {
                return CtlTerminalSetup(notice: "unable to use a TTY: stdin is not a terminal; running the command without one")
            }
            return CtlTerminalSetup(tty: true, notice: "stdin is not a terminal: it is passed on as it is, and no window size is sent")
        }
        let sizeSource = isatty(STDOUT_FILENO) == 1 ? STDOUT_FILENO : stdinIsTerminal ? STDIN_FILENO : nil
        return CtlTerminalSetup(tty: true, raw: stdin, sizeSource: sizeSource)
    }
}

/// A terminal's size as the resize stream carries it.
struct CtlTerminalSize: Equatable, Sendable {
    var width: UInt16
    var height: UInt16

    /// The size of the terminal on `fd`; nil when it is not one or has no size (a zero side).
    init?(of fd: Int32) {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return nil }
        width = size.ws_col
        height = size.ws_row
    }

    /// `{"Width":W,"Height":H}` and the newline Go's encoder adds.
    var message: [UInt8] { Array("{\"Width\":\(width),\"Height\":\(height)}\n".utf8) }
}

/// Our stdin in raw mode for the length of a session (keys go to the container as typed, Ctrl-C
/// too), restored by `restore` on every way out, including a signal that ends us: SIGINT, SIGTERM,
/// SIGHUP and SIGQUIT restore the terminal and are then raised again with their default action.
final class CtlRawMode {
    static let endingSignals = [SIGINT, SIGTERM, SIGHUP, SIGQUIT]

    private let fd: Int32
    private let saved: termios
    private var sources: [any DispatchSourceSignal] = []
    private var restored = false

    init(fd: Int32) throws(CtlError) {
        var saved = termios()
        guard tcgetattr(fd, &saved) == 0 else { throw CtlError.failed("tcgetattr on stdin: \(String(cString: strerror(errno)))") }
        var raw = saved
        cfmakeraw(&raw)
        guard tcsetattr(fd, TCSANOW, &raw) == 0 else { throw CtlError.failed("tcsetattr on stdin: \(String(cString: strerror(errno)))") }
        self.fd = fd
        self.saved = saved
        sources = Self.endingSignals.map { signo in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler {
                var original = saved
                tcsetattr(fd, TCSANOW, &original)
                signal(signo, SIG_DFL)
                kill(getpid(), signo) // to the process: this dispatch thread blocks signals
            }
            source.resume()
            return source
        }
    }

    /// Puts the terminal back as it was (once).
    func restore() {
        guard !restored else { return }
        restored = true
        var original = saved
        tcsetattr(fd, TCSANOW, &original)
        for source in sources { source.cancel() }
        for signo in Self.endingSignals { signal(signo, SIG_DFL) }
    }

    deinit { restore() }
}

enum CtlSignals {
    /// Runs `body` with `signals` delivered as an AsyncStream (through Dispatch signal sources;
    /// they are ignored otherwise meanwhile, and get their default action back after).
    static func with<Result>(_ signals: [Int32], _ body: (AsyncStream<Int32>) async throws -> Result) async throws -> Result {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self, bufferingPolicy: .bufferingNewest(8))
        let sources = signals.map { signo in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { continuation.yield(signo) }
            source.resume()
            return source
        }
        defer {
            for source in sources { source.cancel() }
            for signo in signals { signal(signo, SIG_DFL) }
            continuation.finish()
        }
        return try await body(stream)
    }
}

/// Our stdout or stderr went away (EPIPE): the session ends as a write to a closed pipe ends a
/// command, with status 128 + SIGPIPE.
struct CtlBrokenPipe: Error {}

/// Our stdin, stdout and stderr during a session, with blocking calls on two threads of their own:
/// O_NONBLOCK is never set on descriptors we share with the shell, and files and /dev/null (which
/// epoll refuses) work as well as pipes and terminals. A read of stdin waits in poll() together
/// with a wake-up pipe, so ending the session (cancelling the read) never waits for input.
final class CtlStdio: Sendable {
    private let pool = NIOThreadPool(numberOfThreads: 2)
    private let wakeRead: Int32
    private let wakeWrite: Int32

    init() throws(CtlError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw CtlError.failed("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } // ctl starts no programs: only tidiness
        wakeRead = fds[0]
        wakeWrite = fds[1]
        pool.start()
    }

    /// The next bytes of stdin (up to 32 KiB), nil at its end. Cancelling it ends the wait.
    func readInput() async throws -> [UInt8]? {
        let (stdin, wake) = (STDIN_FILENO, wakeRead)
        let wakeWrite = self.wakeWrite
        return try await withTaskCancellationHandler {
            try await pool.runIfActive { try Self.blockingRead(stdin, wake: wake) }
        } onCancel: {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1) // the pipe stays readable: every later read ends at once too
        }
    }

    /// Writes all of `bytes` to `fd` (stdout or stderr).
    func writeOutput(_ bytes: [UInt8], to fd: Int32) async throws {
        guard !bytes.isEmpty else { return }
        try await pool.runIfActive { try Self.blockingWrite(bytes, to: fd) }
    }

    /// Ends a read still waiting; the threads and the wake-up pipe go once their work is done.
    func shutdown() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1) // a full pipe is readable already
        let (wakeRead, wakeWrite) = (self.wakeRead, self.wakeWrite)
        pool.shutdownGracefully { _ in
            close(wakeRead)
            close(wakeWrite)
        }
    }

    private static func blockingRead(_ fd: Int32, wake: Int32) throws -> [UInt8]? {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 32 << 10)
        while true {
            guard poll(&fds, 2, -1) >= 0 else {
                if errno == EINTR { continue }
                throw CtlError.failed("poll on stdin: \(String(cString: strerror(errno)))")
            }
            if fds[1].revents != 0 { throw CancellationError() }
            if fds[0].revents & Int16(POLLNVAL) != 0 { return nil }
            guard fds[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 { return Array(buffer[0..<count]) }
            if count == 0 { return nil }
            switch errno {
            case EINTR, EAGAIN: continue
            case EIO: return nil // a terminal that hung up
            default: throw CtlError.failed("reading stdin: \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func blockingWrite(_ bytes: [UInt8], to fd: Int32) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count >= 0 {
                offset += count
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN:
                // Somebody else made the descriptor non-blocking: wait until it takes more.
                var wait = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&wait, 1, -1)
            case EPIPE: throw CtlBrokenPipe()
            default:
                throw CtlError.failed("writing to \(fd == STDERR_FILENO ? "stderr" : "stdout"): \(String(cString: strerror(errno)))")
            }
        }
    }
}
