import Crypto
import Foundation
import NIOCore
import NIOWebSocket

/// One exec over WebSocket with the channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`,
/// `channel.k8s.io`): every message is a channel byte and its payload — 0 stdin, 1 stdout,
/// 2 stderr, 3 the status, 4 resize; v5 adds `[255, 0]` from the client, closing stdin. The
/// process starts as soon as the connection is upgraded; an empty stdout message tells the client
/// it is ready. When it has exited and its output is drained, its status goes on channel 3 and the
/// connection is closed (close code 1000). A close frame or a closed connection is a client that
/// left.
final class WebSocketExecSession: ChannelInboundHandler, ExecTransport {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The subprotocols served, most preferred first.
    static let protocols = ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 4.2.2).
    static func accept(key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return Data(digest).base64EncodedString()
    }

    private let request: ExecStreamRequest
    private let version: String
    private var context: ChannelHandlerContext?
    private var relay: ExecRelay?
    /// A message in fragments (a frame without FIN, then continuations).
    private var assembler = WebSocketMessageAssembler()
    private var closing = false

    init(request: ExecStreamRequest, version: String) {
        self.request = request
        self.version = version
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        relay = ExecRelay(request: request, transport: self, connection: context.channel)
        // Once the upgrade's pipeline changes are done (they are under way in this very turn).
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let session = bound.value
            guard let context = session.context else { return }
            // Ready: an empty message on the first output channel the client reads.
            if session.request.stdout { session.send(.stdout, context.channel.allocator.buffer(capacity: 0)) }
            context.flush()
            session.relay?.start()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .continuation:
            switch assembler.add(frame) {
            case .message(let message): handle(message, context: context)
            case .incomplete: break
            case .failure(let code): fail(context, code: code)
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(context, code: .normalClosure)
        default:
            break
        }
    }

    private func handle(_ message: ByteBuffer, context: ChannelHandlerContext) {
        var message = message
        guard let channel = message.readInteger(as: UInt8.self) else { return }
        switch channel {
        case 0:
            relay?.stdin(message)
        case 4:
            relay?.resize(Array(message.readableBytesView))
        case 255 where version.hasPrefix("v5."):
            // CLOSE: [255, channel]; only stdin can be closed by the client.
            guard message.readableBytes == 1, let closed = message.readInteger(as: UInt8.self) else {
                return fail(context, code: .protocolError)
            }
            if closed == 0 { relay?.stdinEnd() }
        default:
            break // nothing else comes from a client
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay?.clientGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay?.connectionWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A frame the decoder refused (too large, malformed): 1002/1009 then the close.
        fail(context, code: error is NIOWebSocketError ? .protocolError : .unexpectedServerError)
    }

    private func fail(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        close(context, code: code)
    }

    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: ExecTransport

    func send(_ channel: ExecChannel, _ bytes: ByteBuffer) {
        guard let context else { return }
        var message = context.channel.allocator.buffer(capacity: bytes.readableBytes + 1)
        message.writeInteger(Self.number(channel))
        var bytes = bytes
        message.writeBuffer(&bytes)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: message)), promise: nil)
    }

    func finish(_ channel: ExecChannel) {
        // Clients learn that output ended from the close that follows the status (client-go's
        // v5 executor does not take CLOSE messages from the server).
    }

    func done() {
        guard let context else { return }
        context.flush()
        close(context, code: .normalClosure)
    }

    private static func number(_ channel: ExecChannel) -> UInt8 {
        switch channel {
        case .stdout: 1
        case .stderr: 2
        case .error: 3
        }
    }
}
