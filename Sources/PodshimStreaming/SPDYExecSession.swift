import Foundation
import NIOCore
import NIOPosix
import PodshimSPDY
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

    public init(stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32? = nil, kill: @escaping @Sendable () -> Void) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self.kill = kill
    }
}

/// An Exec the CRI accepted: which streams the client asked for, and how to start the process
/// (called once the client's streams are all there; `onExit` gets the exit status).
public struct ExecStreamRequest: Sendable {
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool
    public var start: @Sendable (_ onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> ExecProcess

    public init(stdin: Bool, stdout: Bool, stderr: Bool, tty: Bool,
                start: @escaping @Sendable (_ onExit: @escaping @Sendable (ExitStatus) -> Void) throws -> ExecProcess) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
        self.start = start
    }
}

/// One exec over SPDY/3.1 with the `v4.channel.k8s.io` protocol: the client opens an `error`
/// stream and one per standard stream it asked for (each answered at once with SYN_REPLY); then
/// the process starts, stdin DATA goes to its stdin (FIN closes it), its stdout and stderr go out
/// as DATA (FIN at their end), and once it has exited and its output is drained its status goes on
/// the error stream as a JSON metav1.Status (NonZeroExitCode with the code when it failed). A
/// client that leaves (RST_STREAM, GOAWAY, closed connection) takes the process with it.
///
/// Everything runs on the connection's event loop. Back-pressure: output is read only while the
/// connection is writable, and the connection is read only while the process's stdin takes data.
final class SPDYExecSession: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client has to open its streams.
    static let streamCreationTimeout = TimeAmount.seconds(30)
    /// How long output may still drain after the process exited (a background child may hold it open).
    static let drainTimeout = TimeAmount.seconds(2)

    private let request: ExecStreamRequest
    private let decoder = SPDYFrameDecoder()
    private let encoder = SPDYFrameEncoder()
    private var context: ChannelHandlerContext?
    private var streams: [String: UInt32] = [:]
    private var expected: Set<String>
    private var process: ExecProcess?
    private var stdinChannel: Channel?
    private var pendingStdin: [ByteBuffer] = []
    /// Completes when the last stdin write reached the pipe: stdin is closed only then (a close
    /// drops writes still queued).
    private var lastStdinWrite: EventLoopFuture<Void>?
    private var stdinDone = false
    private var outputs: [UInt32: Channel] = [:]
    private var exitStatus: ExitStatus?
    private var finished = false
    private var timeout: Scheduled<Void>?
    /// Resize messages not parsed yet, and the last size asked for before the process ran.
    private var resizeBuffer: [UInt8] = []
    private var pendingSize: (rows: UInt16, columns: UInt16)?

    init(request: ExecStreamRequest) {
        self.request = request
        var expected: Set<String> = ["error"]
        if request.stdin { expected.insert("stdin") }
        if request.stdout { expected.insert("stdout") }
        if request.stderr && !request.tty { expected.insert("stderr") }
        if request.tty { expected.insert("resize") }
        self.expected = expected
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: Self.streamCreationTimeout) {
            if bound.value.process == nil { bound.value.context?.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        decoder.feed(buffer.readableBytesView)
        do {
            while let frame = try decoder.next() { handle(frame, context: context) }
        } catch {
            if let stream = error.stream, !isKnown(stream) {
                write(.rstStream(streamID: stream, status: .protocolError), context: context)
            } else {
                write(.goAway(lastGoodStreamID: streams.values.max() ?? 0, status: 1), context: context)
                context.close(promise: nil)
            }
        }
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if exitStatus == nil { process?.kill() }
        if let terminal = process?.terminal {
            close(terminal)
            process?.terminal = nil
        }
        stdinChannel?.close(promise: nil)
        for channel in outputs.values { channel.close(promise: nil) }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for channel in outputs.values { channel.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func isKnown(_ stream: UInt32) -> Bool { streams.values.contains(stream) }

    private func handle(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        switch frame {
        case .synStream(let id, _, _, _, let headers):
            let type = headers["streamtype"]?.lowercased() ?? ""
            guard expected.contains(type), streams[type] == nil, id > (streams.values.max() ?? 0) else {
                write(.rstStream(streamID: id, status: .protocolError), context: context)
                return
            }
            streams[type] = id
            write(.synReply(streamID: id, flags: 0, headers: SPDYHeaders()), context: context)
            if process == nil && Set(streams.keys) == expected { start(context: context) }
        case .data(let id, let flags, let payload):
            if id == streams["stdin"] {
                if !payload.isEmpty { sendStdin(context.channel.allocator.buffer(bytes: payload), context: context) }
                if flags & SPDYFrame.flagFin != 0 { finishStdin() }
            }
            if id == streams["resize"] { resize(payload) }
            // Data on other streams is ignored.
        case .ping(let id):
            write(.ping(id: id), context: context)
        case .rstStream(let id, _):
            // The client dropped a stream it needs before the end: it left.
            if !finished && (id == streams["error"] || id == streams["stdout"] || id == streams["stderr"]) {
                context.close(promise: nil)
            }
        case .goAway:
            context.close(promise: nil)
        case .synReply, .headers, .settings, .windowUpdate:
            break // flow control is TCP's, as spdystream's
        }
    }

    private func start(context: ChannelHandlerContext) {
        timeout?.cancel()
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let started: ExecProcess
        do {
            started = try request.start { status in
                loop.execute { bound.value.exited(status) }
            }
        } catch {
            finished = true
            writeStatus(Self.failure(message: "\(error)", reason: "InternalError", code: 500), context: context)
            context.flush()
            return
        }
        process = started
        if let size = pendingSize, let terminal = started.terminal {
            try? Kernel.resizeTerminal(terminal, rows: size.rows, columns: size.columns) // a terminal that cannot be resized keeps its size
        }
        for (fd, type) in [(started.stdout, "stdout"), (started.stderr, "stderr")] {
            guard let fd else { continue }
            guard let stream = streams[type] else {
                close(fd) // asked for, but merged into stdout by a tty: not read
                continue
            }
            let forwarder = OutputForwarder(stream: stream, session: bound)
            NIOPipeBootstrap(group: loop)
                .channelOption(ChannelOptions.autoRead, value: context.channel.isWritable)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(forwarder) }
                }
                .takingOwnershipOfDescriptor(input: fd)
                .whenComplete { result in
                    switch result {
                    case .success(let channel): bound.value.outputs[stream] = channel
                    case .failure: bound.value.outputEnded(stream)
                    }
                }
        }
        if let fd = started.stdin {
            let watcher = StdinWatcher(session: bound)
            NIOPipeBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(watcher) }
                }
                .takingOwnershipOfDescriptor(output: fd)
                .whenComplete { result in
                    guard case .success(let channel) = result else { return }
                    let session = bound.value
                    session.stdinChannel = channel
                    for buffer in session.pendingStdin { session.lastStdinWrite = channel.write(buffer) }
                    session.pendingStdin.removeAll()
                    channel.flush()
                    if session.stdinDone { session.closeStdin() }
                }
        }
        if started.stdout == nil && started.stderr == nil { /* nothing to drain */ }
    }

    /// `{"Width":W,"Height":H}` messages, one after another (Go adds a newline): each sets the
    /// terminal's size; a size with a zero side is skipped, as containerd does.
    private func resize(_ payload: [UInt8]) {
        resizeBuffer += payload
        while let end = resizeBuffer.firstIndex(of: UInt8(ascii: "}")) {
            let message = Array(resizeBuffer[...end])
            resizeBuffer.removeFirst(end + 1)
            guard let start = message.firstIndex(of: UInt8(ascii: "{")),
                  let value = try? JSONValue.parse(Array(message[start...])), // not a size: ignored
                  let width = value["Width"]?.intValue, let height = value["Height"]?.intValue,
                  (1...65535).contains(width), (1...65535).contains(height) else { continue }
            if let terminal = process?.terminal {
                try? Kernel.resizeTerminal(terminal, rows: UInt16(height), columns: UInt16(width)) // as above
            } else {
                pendingSize = (UInt16(height), UInt16(width))
            }
        }
        if resizeBuffer.count > 4096 { resizeBuffer.removeAll() } // no size message is that long
    }

    private func sendStdin(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        guard !stdinDone else { return }
        guard let stdinChannel else {
            pendingStdin.append(buffer)
            return
        }
        lastStdinWrite = stdinChannel.writeAndFlush(buffer)
        if !stdinChannel.isWritable {
            // The process does not keep up: stop reading the client until its stdin drains.
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    fileprivate func stdinWritable() {
        context?.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    private func finishStdin() {
        stdinDone = true
        closeStdin()
    }

    /// Closes the process's stdin once what was written to it got there.
    private func closeStdin() {
        guard let channel = stdinChannel else { return }
        if let lastStdinWrite {
            lastStdinWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            channel.close(promise: nil)
        }
    }

    fileprivate func output(_ buffer: ByteBuffer, stream: UInt32) {
        guard let context else { return }
        write(.data(streamID: stream, flags: 0, payload: Array(buffer.readableBytesView)), context: context)
        context.flush()
    }

    fileprivate func outputEnded(_ stream: UInt32) {
        guard let context, outputs[stream] != nil || process != nil else { return }
        outputs[stream] = nil
        write(.data(streamID: stream, flags: SPDYFrame.flagFin, payload: []), context: context)
        context.flush()
        endedOutputs.insert(stream)
        finishIfDone()
    }

    private var endedOutputs: Set<UInt32> = []

    private var outputsDrained: Bool {
        [streams["stdout"], request.tty ? nil : streams["stderr"]].compactMap { $0 }.allSatisfy(endedOutputs.contains)
    }

    private func exited(_ status: ExitStatus) {
        exitStatus = status
        finishIfDone()
        guard !finished, let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.drainTimeout) {
            // A background child still holds the output open: the session ends without it.
            let session = bound.value
            for (stream, channel) in session.outputs where !session.endedOutputs.contains(stream) {
                channel.close(promise: nil)
                session.outputEnded(stream)
            }
        }
    }

    private func finishIfDone() {
        guard !finished, let status = exitStatus, outputsDrained, let context else { return }
        finished = true
        stdinChannel?.close(promise: nil)
        let code = status.code
        if code == 0 {
            writeStatus(#"{"metadata":{},"status":"Success"}"#, context: context)
        } else {
            writeStatus(Self.failure(message: "command terminated with non-zero exit code: exit status \(code)",
                                     reason: "NonZeroExitCode", code: nil, exitCode: code), context: context)
        }
        context.flush()
    }

    /// A metav1.Status saying the exec failed.
    static func failure(message: String, reason: String, code: Int?, exitCode: Int32? = nil) -> String {
        var members: [(key: String, value: JSONValue)] = [
            ("metadata", .object([])), ("status", .string("Failure")), ("message", .string(message)), ("reason", .string(reason)),
        ]
        if let exitCode {
            members.append(("details", .object([("causes", .array([.object([("reason", .string("ExitCode")),
                                                                           ("message", .string("\(exitCode)"))])]))])))
        }
        if let code { members.append(("code", .integer(code))) }
        return JSONValue.object(members).text
    }

    private func writeStatus(_ json: String, context: ChannelHandlerContext) {
        guard let stream = streams["error"] else { return }
        write(.data(streamID: stream, flags: 0, payload: Array(json.utf8)), context: context)
        write(.data(streamID: stream, flags: SPDYFrame.flagFin, payload: []), context: context)
    }

    private func write(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: encoder.encode(frame))), promise: nil)
    }
}

/// Reads one output pipe of the process into its stream.
private final class OutputForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let stream: UInt32
    let session: NIOLoopBound<SPDYExecSession>

    init(stream: UInt32, session: NIOLoopBound<SPDYExecSession>) {
        self.stream = stream
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.value.output(unwrapInboundIn(data), stream: stream)
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.value.outputEnded(stream)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelEvent, case .inputClosed = event as! ChannelEvent { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Tells the session when the process's stdin takes data again.
private final class StdinWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let session: NIOLoopBound<SPDYExecSession>

    init(session: NIOLoopBound<SPDYExecSession>) {
        self.session = session
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session.value.stdinWritable() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil) // the process closed its stdin (EPIPE): the rest is dropped
    }
}
