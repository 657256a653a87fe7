import Foundation
import Glibc
import NIOCore
import NIOPosix
import PodshimSystem

/// What an exec's output goes out on, whatever the framing (SPDY streams, WebSocket channels).
enum ExecChannel: Sendable {
    case stdout, stderr, error
}

/// The framing side of an exec session, as ``ExecRelay`` sees it. Called on the event loop.
protocol ExecTransport: AnyObject {
    /// Sends bytes of one channel (not flushed).
    func send(_ channel: ExecChannel, _ bytes: ByteBuffer)
    /// The channel has no more to say (SPDY: FIN).
    func finish(_ channel: ExecChannel)
    /// Everything is said: the session may end.
    func done()
}

/// The process side of an exec session, shared by the SPDY and WebSocket framings: starts the
/// process, feeds its stdin (closing it only once what was written got there), reads its output
/// as NIO pipe channels, and once it has exited and its output is drained sends its status as a
/// metav1.Status (NonZeroExitCode with the code). Back-pressure both ways: output is read only
/// while the client's connection is writable, the client only while the process takes its stdin.
/// A client that leaves takes the process with it. Everything runs on the connection's event loop.
final class ExecRelay {
    /// How long output may still drain after the process exited (a background child may hold it open).
    static let drainTimeout = TimeAmount.seconds(2)

    private let request: ExecStreamRequest
    private weak var transport: (any ExecTransport)?
    private let connection: Channel
    private(set) var process: ExecProcess?
    private var stdinChannel: Channel?
    private var pendingStdin: [ByteBuffer] = []
    /// Completes when the last stdin write reached the pipe: stdin is closed only then (a close
    /// drops writes still queued).
    private var lastStdinWrite: EventLoopFuture<Void>?
    private var stdinDone = false
    private var outputs: [ExecChannel: Channel] = [:]
    private var ended: Set<ExecChannel> = []
    private var exitStatus: ExitStatus?
    private(set) var finished = false
    /// Resize messages not parsed yet, and the last size asked for before the process ran.
    private var resizeBuffer: [UInt8] = []
    private var pendingSize: (rows: UInt16, columns: UInt16)?

    init(request: ExecStreamRequest, transport: any ExecTransport, connection: Channel) {
        self.request = request
        self.transport = transport
        self.connection = connection
    }

    /// Output channels the client reads (stderr is merged into stdout by a tty).
    private var outputChannels: [ExecChannel] {
        (request.stdout ? [.stdout] : []) + (request.stderr && !request.tty ? [.stderr] : [])
    }

    func start() {
        guard process == nil, !finished else { return }
        let loop = connection.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let started: ExecProcess
        do {
            started = try request.start { status in
                loop.execute { bound.value.exited(status) }
            }
        } catch let error as ExecCommandNotRunnable {
            // As runc and a shell report it: the command "exited" 127 or 126, saying why.
            let message = "exec failed: \(error.message)"
            startFailed(status: Self.failure(message: message, reason: "NonZeroExitCode", code: nil, exitCode: error.exitCode),
                        diagnostic: message)
            return
        } catch {
            startFailed(status: Self.failure(message: "\(error)", reason: "InternalError", code: 500), diagnostic: nil)
            return
        }
        process = started
        if let size = pendingSize, let terminal = started.terminal {
            try? Kernel.resizeTerminal(terminal, rows: size.rows, columns: size.columns) // a terminal that cannot be resized keeps its size
        }
        for (fd, channel) in [(started.stdout, ExecChannel.stdout), (started.stderr, ExecChannel.stderr)] {
            guard let fd else { continue }
            guard outputChannels.contains(channel) else {
                close(fd)
                continue
            }
            let forwarder = OutputForwarder(channel: channel, relay: bound)
            NIOPipeBootstrap(group: loop)
                .channelOption(ChannelOptions.autoRead, value: connection.isWritable)
                .channelInitializer { pipe in
                    pipe.eventLoop.makeCompletedFuture { try pipe.pipeline.syncOperations.addHandler(forwarder) }
                }
                .takingOwnershipOfDescriptor(input: fd)
                .whenComplete { result in
                    switch result {
                    case .success(let pipe): bound.value.outputs[channel] = pipe
                    case .failure: bound.value.outputEnded(channel)
                    }
                }
        }
        if let fd = started.stdin {
            let watcher = StdinWatcher(relay: bound)
            NIOPipeBootstrap(group: loop)
                .channelInitializer { pipe in
                    pipe.eventLoop.makeCompletedFuture { try pipe.pipeline.syncOperations.addHandler(watcher) }
                }
                .takingOwnershipOfDescriptor(output: fd)
                .whenComplete { result in
                    guard case .success(let pipe) = result else { return }
                    let relay = bound.value
                    relay.stdinChannel = pipe
                    for buffer in relay.pendingStdin { relay.lastStdinWrite = pipe.write(buffer) }
                    relay.pendingStdin.removeAll()
                    pipe.flush()
                    if relay.stdinDone { relay.closeStdin() }
                }
        }
    }

    // MARK: From the client

    func stdin(_ buffer: ByteBuffer) {
        guard request.stdin, !stdinDone, buffer.readableBytes > 0 else { return }
        guard let stdinChannel else {
            pendingStdin.append(buffer)
            return
        }
        lastStdinWrite = stdinChannel.writeAndFlush(buffer)
        if !stdinChannel.isWritable {
            // The process does not keep up: stop reading the client until its stdin drains.
            connection.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
    }

    func stdinEnd() {
        stdinDone = true
        closeStdin()
    }

    /// `{"Width":W,"Height":H}` messages, one after another (Go adds a newline): each sets the
    /// terminal's size; a size with a zero side is skipped, as containerd does.
    func resize(_ payload: [UInt8]) {
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

    /// The client's connection can take more (or no more) output.
    func connectionWritabilityChanged() {
        let writable = connection.isWritable
        for pipe in outputs.values { pipe.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in } }
    }

    /// The client left (or the connection closed): an exec's process goes with it (an attached
    /// container stays; its stdin is done with, as when the client ends it).
    func clientGone() {
        if exitStatus == nil && !request.attach { process?.kill() }
        if request.attach { stdinEndedOnce() }
        if let terminal = process?.terminal {
            close(terminal)
            process?.terminal = nil
        }
        stdinChannel?.close(promise: nil)
        for pipe in outputs.values { pipe.close(promise: nil) }
    }

    // MARK: From the process

    fileprivate func stdinWritable() {
        connection.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    private func closeStdin() {
        guard let pipe = stdinChannel else { return }
        let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
        if let lastStdinWrite {
            lastStdinWrite.whenComplete { _ in
                pipe.close(promise: nil)
                bound.value.stdinEndedOnce()
            }
        } else {
            pipe.close(promise: nil)
            stdinEndedOnce()
        }
    }

    /// Tells the process side once that the client's stdin is over (after what it wrote got there).
    private func stdinEndedOnce() {
        guard let hook = process?.stdinEnded else { return }
        process?.stdinEnded = nil
        hook()
    }

    fileprivate func output(_ buffer: ByteBuffer, channel: ExecChannel) {
        transport?.send(channel, buffer)
        connection.flush()
    }

    fileprivate func outputEnded(_ channel: ExecChannel) {
        guard !ended.contains(channel) else { return }
        outputs[channel] = nil
        ended.insert(channel)
        transport?.finish(channel)
        connection.flush()
        finishIfDone()
    }

    private func exited(_ status: ExitStatus) {
        exitStatus = status
        finishIfDone()
        guard !finished else { return }
        let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
        connection.eventLoop.scheduleTask(in: Self.drainTimeout) {
            // A background child still holds the output open: the session ends without it.
            let relay = bound.value
            for (channel, pipe) in relay.outputs where !relay.ended.contains(channel) {
                pipe.close(promise: nil)
                relay.outputEnded(channel)
            }
        }
    }

    private func finishIfDone() {
        guard !finished, let status = exitStatus, outputChannels.allSatisfy(ended.contains) else { return }
        finished = true
        stdinChannel?.close(promise: nil)
        if let terminal = process?.terminal {
            close(terminal)
            process?.terminal = nil
        }
        let code = request.attach ? 0 : status.code
        if code == 0 {
            sendStatus(#"{"metadata":{},"status":"Success"}"#)
        } else {
            sendStatus(Self.failure(message: "command terminated with non-zero exit code: exit status \(code)",
                                    reason: "NonZeroExitCode", code: nil, exitCode: code))
        }
        transport?.done()
        connection.flush()
    }

    /// The process could not start: the session ends at once. `diagnostic` goes to the client's
    /// stderr (or terminal), every output stream the client reads ends (client-go's executor, like
    /// ctl's, reads the status only once stdout and stderr have ended), then the status; what the
    /// client still sends to stdin is dropped.
    private func startFailed(status: String, diagnostic: String?) {
        finished = true
        stdinDone = true
        pendingStdin.removeAll()
        if let diagnostic {
            let channel: ExecChannel? = outputChannels.contains(.stderr) ? .stderr : request.tty && request.stdout ? .stdout : nil
            if let channel {
                transport?.send(channel, connection.allocator.buffer(string: diagnostic + (request.tty ? "\r\n" : "\n")))
            }
        }
        for channel in outputChannels where !ended.contains(channel) {
            ended.insert(channel)
            transport?.finish(channel)
        }
        sendStatus(status)
        transport?.done()
        connection.flush()
    }

    private func sendStatus(_ json: String) {
        transport?.send(.error, connection.allocator.buffer(string: json))
        transport?.finish(.error)
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
}

/// Reads one output pipe of the process into its channel.
private final class OutputForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let channel: ExecChannel
    let relay: NIOLoopBound<ExecRelay>

    init(channel: ExecChannel, relay: NIOLoopBound<ExecRelay>) {
        self.channel = channel
        self.relay = relay
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay.value.output(unwrapInboundIn(data), channel: channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay.value.outputEnded(channel)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil) // a terminal's master reads EIO once the process is gone
    }
}

/// Tells the relay when the process's stdin takes data again.
private final class StdinWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let relay: NIOLoopBound<ExecRelay>

    init(relay: NIOLoopBound<ExecRelay>) {
        self.relay = relay
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { relay.value.stdinWritable() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil) // the process closed its stdin (EPIPE): the rest is dropped
    }
}
