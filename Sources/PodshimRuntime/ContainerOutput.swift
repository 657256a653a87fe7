import Dispatch
import Glibc
import Synchronization
import PodshimSystem

/// Receives each complete line a container prints (for `podshim run`'s terminal echo).
public typealias LineSink = @Sendable (_ container: String, _ stream: LogStream, _ text: [UInt8]) -> Void

/// A container's stdout and stderr: two pipes whose read ends podshim drains into the CRI log file
/// (and, optionally, a ``LineSink``), or with a tty the master side of its terminal (its output,
/// stderr merged, logged as stdout). The write ends (or the terminal's slave side) go to the
/// container. Attach sessions get a copy of what it prints from then on (``subscribe(_:)``).
public final class ContainerOutput: @unchecked Sendable { // owns pipe and log fds (kernel handles), set up before it is shared; reads happen on the readiness loop thread only; the attach table is a Mutex
    public let container: String
    public let logPath: String
    /// Write ends for the child; close them in podshim with ``closeChildEnds()`` once it started.
    /// With a terminal both are its slave side (one descriptor), which is also the child's stdin.
    public private(set) var childStdout: Int32 = -1
    public private(set) var childStderr: Int32 = -1
    /// The master side of the container's terminal (open until its output has ended); nil without a tty.
    public let terminal: Int32?

    private let logFD: Int32
    private let sink: LineSink?
    private let drained = DispatchGroup()
    private var readEnds: [Int32] = []
    private let attached = Mutex(Attached())

    /// The attach sessions' pipes (write ends, by stream), the streams that ended, and who waits
    /// for all of them to end.
    private struct Attached {
        var writers: [LogStream: [Int32]] = [:]
        var ended: Set<LogStream> = []
        var onEnd: [@Sendable () -> Void] = []
    }

    /// Creates the pipes and opens (appends to) the log file.
    ///
    /// With a `fifoDirectory`, the streams are named pipes `<dir>/<container>.stdout|.stderr`
    /// instead, and the container's ends are opened read-write: the container then holds a reader
    /// of its own output, so it never gets SIGPIPE when podshim is gone (a daemon killed and
    /// restarted); it blocks once the 1 MiB pipe buffer is full, until a podshim reads again
    /// (see ``reattach(container:logPath:fifoDirectory:)``).
    /// With `terminal`, a new pseudo-terminal instead of pipes or FIFOs: its master side is read (and
    /// kept by the pod's pause process through the container's ``ContainerInput``, which shares it),
    /// its slave side goes to the container as stdin, stdout and stderr.
    public init(container: String, logPath: String, sink: LineSink?, fifoDirectory: String? = nil,
                terminal: Bool = false) throws(SystemError) {
        self.container = container
        self.logPath = logPath
        self.sink = sink
        logFD = try Self.openLog(logPath)
        if terminal {
            let pair: (master: Int32, slave: Int32)
            do throws(SystemError) {
                pair = try Kernel.pty()
            } catch {
                close(logFD)
                throw error
            }
            self.terminal = pair.master
            childStdout = pair.slave
            childStderr = pair.slave
            readEnds = [pair.master]
            attached.withLock { _ = $0.ended.insert(.stderr) }
            watch(pair.master, stream: .stdout)
            return
        }
        self.terminal = nil
        /// The (podshim's read end, container's end) of one stream.
        func stream(_ name: String) throws(SystemError) -> (Int32, Int32) {
            guard let fifoDirectory else { return try Self.makePipe() }
            return try Self.makeFIFO(fifoDirectory + "/" + container + "." + name)
        }
        let out: (Int32, Int32)
        let err: (Int32, Int32)
        do throws(SystemError) {
            out = try stream("stdout")
        } catch {
            close(logFD)
            throw error
        }
        do throws(SystemError) {
            err = try stream("stderr")
        } catch {
            close(out.0); close(out.1); close(logFD)
            throw error
        }
        childStdout = out.1
        childStderr = err.1
        readEnds = [out.0, err.0]
        watch(out.0, stream: .stdout)
        watch(err.0, stream: .stderr)
    }

    private init(container: String, logPath: String, logFD: Int32, readEnds: [Int32], terminal: Int32? = nil) {
        self.container = container
        self.logPath = logPath
        self.logFD = logFD
        self.sink = nil
        self.readEnds = readEnds
        self.terminal = terminal
        watch(readEnds[0], stream: .stdout)
        if readEnds.count > 1 {
            watch(readEnds[1], stream: .stderr)
        } else {
            attached.withLock { _ = $0.ended.insert(.stderr) }
        }
    }

    /// podshim's read ends of the two pipes (for the fd keeper to hold copies of); empty with a
    /// terminal (the keeper holds its master through the container's input).
    public var pipeReadEnds: [Int32] { terminal == nil ? readEnds : [] }

    /// Reads again from the terminal of a container started by an earlier podshim: `master` is a
    /// copy of its master side taken back from the pod's pause process (owned from here on).
    public static func reattach(container: String, logPath: String, terminal master: Int32) throws(SystemError) -> ContainerOutput {
        let logFD: Int32
        do throws(SystemError) {
            logFD = try openLog(logPath)
        } catch {
            close(master)
            throw error
        }
        return ContainerOutput(container: container, logPath: logPath, logFD: logFD, readEnds: [master], terminal: master)
    }

    /// Reads again from the named pipes of a container started by an earlier podshim (one that
    /// was killed): the output the container wrote meanwhile is still in the pipe buffers.
    public static func reattach(container: String, logPath: String, fifoDirectory: String) throws(SystemError) -> ContainerOutput {
        let logFD = try openLog(logPath)
        var ends: [Int32] = []
        for stream in ["stdout", "stderr"] {
            let path = fifoDirectory + "/" + container + "." + stream
            do {
                ends.append(try libcCall("open", path: path) { open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) })
            } catch {
                for fd in ends { close(fd) }
                close(logFD)
                throw error
            }
        }
        return ContainerOutput(container: container, logPath: logPath, logFD: logFD, readEnds: ends)
    }

    private static func openLog(_ logPath: String) throws(SystemError) -> Int32 {
        try libcCall("open", path: logPath) {
            open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        }
    }

    /// A fresh FIFO at `path`: podshim's non-blocking read end, and the container's read-write end.
    private static func makeFIFO(_ path: String) throws(SystemError) -> (Int32, Int32) {
        unlink(path)
        _ = try libcCall("mkfifo", path: path) { mkfifo(path, 0o600) }
        let reader = try libcCall("open", path: path) { open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        let writer: Int32
        do {
            writer = try libcCall("open", path: path) { open(path, O_RDWR | O_CLOEXEC) }
        } catch {
            close(reader)
            throw error
        }
        _ = fcntl(reader, 1031 /* F_SETPIPE_SZ */, 1 << 20) // best effort: more room while nobody reads
        return (reader, writer)
    }

    deinit {
        closeChildEnds()
        close(logFD)
    }

    /// Reopens the log file at ``logPath`` (after the kubelet rotated it away): the new file takes
    /// the old descriptor's number with dup2, so a write in progress goes to one file or the other.
    public func reopenLog() throws(SystemError) {
        let fresh = try libcCall("open", path: logPath) {
            open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o640)
        }
        defer { close(fresh) }
        _ = try libcCall("dup2", path: logPath) { dup2(fresh, logFD) }
        _ = fcntl(logFD, F_SETFD, FD_CLOEXEC) // the spawn path closes stray fds in children anyway
    }

    /// Closes podshim's copies of the write ends, so EOF arrives when the container's side closes.
    public func closeChildEnds() {
        if childStderr >= 0 && childStderr != childStdout { close(childStderr) }
        childStderr = -1
        if childStdout >= 0 { close(childStdout); childStdout = -1 }
    }

    // MARK: Attach sessions

    /// A pipe that gets what the container prints on `stream` from now on, as it is read (the read
    /// end, owned by the caller). A stream that has ended (or that a terminal does not have) gives
    /// a pipe at its end. A session that does not keep up (its 1 MiB pipe is full) has its pipe
    /// closed: a slow client never holds back the container or its log.
    public func subscribe(_ stream: LogStream) throws(SystemError) -> Int32 {
        let pipe = try Kernel.pipe()
        _ = fcntl(pipe.write, F_SETFL, fcntl(pipe.write, F_GETFL) | O_NONBLOCK)
        _ = fcntl(pipe.write, 1031 /* F_SETPIPE_SZ */, 1 << 20) // best effort: more room for a burst
        let added = attached.withLock { state in
            guard !state.ended.contains(stream) else { return false }
            state.writers[stream, default: []].append(pipe.write)
            return true
        }
        if !added { close(pipe.write) }
        return pipe.read
    }

    /// Calls `body` once the container's output has ended (every stream at EOF: its processes are
    /// gone), at once when it has.
    public func whenEnded(_ body: @escaping @Sendable () -> Void) {
        let now = attached.withLock { state in
            guard state.ended.count < 2 else { return true }
            state.onEnd.append(body)
            return false
        }
        if now { body() }
    }

    /// Copies raw output to the sessions of `stream`, dropping those that cannot take it.
    private func forward(_ bytes: ArraySlice<UInt8>, stream: LogStream) {
        let writers = attached.withLock { $0.writers[stream] ?? [] }
        guard !writers.isEmpty else { return }
        var slow: [Int32] = []
        for fd in writers {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written != bytes.count { slow.append(fd) } // full (EAGAIN, a partial write) or gone (EPIPE)
        }
        guard !slow.isEmpty else { return }
        attached.withLock { $0.writers[stream]?.removeAll(where: slow.contains) }
        for fd in slow { close(fd) }
    }

    /// `stream` reached EOF: its sessions get EOF; once every stream has, the waiters are called.
    private func ended(_ stream: LogStream) {
        let (writers, waiters) = attached.withLock { state -> ([Int32], [@Sendable () -> Void]) in
            let writers = state.writers.removeValue(forKey: stream) ?? []
            state.ended.insert(stream)
            guard state.ended.count == 2 else { return (writers, []) }
            defer { state.onEnd.removeAll() }
            return (writers, state.onEnd)
        }
        for fd in writers { close(fd) }
        for waiter in waiters { waiter() }
    }

    /// Waits until both streams reached EOF or `timeoutSeconds` passed (a process that escaped the
    /// container may hold a pipe open); then stops reading. Returns true when fully drained.
    @discardableResult
    public func waitDrained(timeoutSeconds: Double) -> Bool {
        let drainedInTime = drained.wait(timeout: .now() + timeoutSeconds) == .success
        if !drainedInTime {
            for fd in readEnds { EventLoop.shared.unwatch(fd) }
        }
        return drainedInTime
    }

    private static func makePipe() throws(SystemError) -> (Int32, Int32) {
        let pipe = try Kernel.pipe()
        return (pipe.read, pipe.write)
    }

    private func watch(_ fd: Int32, stream: LogStream) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var formatter = CRILogFormatter(stream: stream)
        let name = container
        drained.enter()
        do {
            // The handlers keep the output alive until both streams are drained and closed (a
            // restart may drop the container's reference to it before that).
            try EventLoop.shared.watch(fd, onReadable: { [self] fd in
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    forward(buffer[..<count], stream: stream)
                    emit(formatter.append(buffer[..<count]), stream: stream, name: name)
                    return true
                }
                // A terminal's master reads EIO once the container's side is closed: its end.
                return count < 0 && (errno == EAGAIN || errno == EINTR)
            }, onClose: { [self] fd in
                emit(formatter.finish(), stream: stream, name: name)
                close(fd)
                ended(stream)
                drained.leave()
            })
        } catch {
            close(fd)
            ended(stream)
            drained.leave()
        }
    }

    private func emit(_ records: [CRILogFormatter.Record], stream: LogStream, name: String) {
        guard !records.isEmpty else { return }
        var bytes: [UInt8] = []
        for record in records { bytes += record.line }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(logFD, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break } // a full disk must not stop the container; the line is lost
            offset += written
        }
        if let sink {
            for record in records { sink(name, stream, record.text) }
        }
    }
}
