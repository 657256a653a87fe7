import NIOCore
import PodshimSPDY

/// One exec over SPDY/3.1 with the `v4.channel.k8s.io` protocol: the client opens an `error`
/// stream and one per standard stream it asked for (`resize` instead of `stderr` with a tty),
/// each answered at once with SYN_REPLY; then the process starts (``ExecRelay``), stdin DATA goes
/// to it (FIN closes its stdin), its output goes out as DATA with a FIN at the end of each, and
/// its status on the error stream. RST_STREAM on a stream it needs, GOAWAY or a closed
/// connection mean the client left.
final class SPDYExecSession: ChannelInboundHandler, ExecTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client has to open its streams.
    static let streamCreationTimeout = TimeAmount.seconds(30)

    private let request: ExecStreamRequest
    private let connection = SPDYConnection()
    private var context: ChannelHandlerContext?
    private var relay: ExecRelay?
    private var streams: [String: UInt32] = [:]
    private let expected: Set<String>
    private var timeout: Scheduled<Void>?

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
        relay = ExecRelay(request: request, transport: self, connection: context.channel)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: Self.streamCreationTimeout) {
            if bound.value.relay?.process == nil { bound.value.context?.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.read(unwrapInboundIn(data), context: context, isKnown: { self.streams.values.contains($0) }, lastGood: { self.streams.values.max() ?? 0 }) { frame in
            handle(frame, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        relay?.clientGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay?.connectionWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

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
            if Set(streams.keys) == expected {
                timeout?.cancel()
                relay?.start()
            }
        case .data(let id, let flags, let payload):
            if id == streams["stdin"] {
                relay?.stdin(context.channel.allocator.buffer(bytes: payload))
                if flags & SPDYFrame.flagFin != 0 { relay?.stdinEnd() }
            } else if id == streams["resize"] {
                relay?.resize(payload)
            }
        case .ping(let id):
            write(.ping(id: id), context: context)
        case .rstStream(let id, _):
            // The client dropped a stream it needs before the end: it left.
            if relay?.finished != true && (id == streams["error"] || id == streams["stdout"] || id == streams["stderr"]) {
                context.close(promise: nil)
            }
        case .goAway:
            context.close(promise: nil)
        case .synReply, .headers, .settings, .windowUpdate:
            break // flow control is TCP's, as spdystream's
        }
    }

    // MARK: ExecTransport

    private func stream(_ channel: ExecChannel) -> UInt32? {
        switch channel {
        case .stdout: streams["stdout"]
        case .stderr: streams["stderr"]
        case .error: streams["error"]
        }
    }

    func send(_ channel: ExecChannel, _ bytes: ByteBuffer) {
        guard let context, let id = stream(channel) else { return }
        write(.data(streamID: id, flags: 0, payload: Array(bytes.readableBytesView)), context: context)
    }

    func finish(_ channel: ExecChannel) {
        guard let context, let id = stream(channel) else { return }
        write(.data(streamID: id, flags: SPDYFrame.flagFin, payload: []), context: context)
    }

    func done() {
        // The client closes the session once it has read everything (RST_STREAM, GOAWAY).
    }

    private func write(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        connection.write(frame, context: context)
    }
}
