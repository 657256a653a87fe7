import Foundation
import NIOCore
import NIOWebSocket
import PodshimSystem

/// Port forwarding over WebSocket, as the kubelet's own streaming server serves it
/// (`v4.channel.k8s.io`, or `v4.base64.channel.k8s.io`: text messages, the channel as an ASCII
/// digit, the payload in base64). The ports come in the URL (`?port=80&port=8080`, or
/// `port=80,8080`) and each gets one connection for the session's life: port i has data channel
/// 2i and error channel 2i+1, and the first message on each is the port, 2 bytes little-endian
/// (how a client tells the channels apart). All the connections are made at once, right after the
/// upgrade, through ``PodPortConnection``; the client's `[2i][bytes]` messages go to port i (what
/// comes before the connection is there is held), what the pod sends comes back on 2i. A failure
/// (refused, no such port) is text on 2i+1, and that port is done. v4 has no way to close one
/// channel: a port whose pod side ended is done a linger later, and when every port is done the
/// session closes (1000), as the kubelet's does once its forwards return. A close or a lost
/// connection from the client closes every pod socket.
final class WebSocketPortForwardSession: ChannelInboundHandler, PodPortConnectionDelegate {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// The subprotocols served, most preferred first.
    static let protocols = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"]
    /// Ports in one session at most: the base64 variant's channel digit (`'0' + 2i + 1`) must stay
    /// one byte, and no client forwards more.
    static let maximumPorts = 100

    /// The ports of a query string (`port=80&port=8080,8081`; other parameters are ignored), in
    /// order, duplicates kept (each gets its own connection): an error naming the parameter when
    /// there is none, when one is empty or not a port number 1…65535, or when there are more than
    /// ``maximumPorts``.
    static func ports(query: String) throws(PodshimError) -> [Int] {
        func invalid(_ message: String) -> PodshimError {
            PodshimError(.invalidArgument, subject: "query parameter port", message: message)
        }
        var ports: [Int] = []
        var seen = false
        for parameter in query.split(separator: "&") {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard Self.decode(pair[0]) == "port" else { continue }
            seen = true
            let value = pair.count > 1 ? Self.decode(pair[1]) : ""
            guard !value.isEmpty else { throw invalid("is empty") }
            for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                guard item.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(item), (1...65535).contains(port) else {
                    throw invalid("\"\(item)\" is not a port number (1…65535)")
                }
                ports.append(port)
            }
        }
        guard seen else { throw invalid("is required (the ports to forward, e.g. ?port=8080)") }
        guard ports.count <= maximumPorts else { throw invalid("\(ports.count) ports, at most \(maximumPorts) are served at once") }
        return ports
    }

    /// A query component with its percent escapes (and `+` for a blank) decoded; as it was if it
    /// does not decode.
    private static func decode(_ component: Substring) -> String {
        let text = component.replacingOccurrences(of: "+", with: " ")
        return text.removingPercentEncoding ?? text
    }

    private let request: PortForwardStreamRequest
    private let ports: [Int]
    private let base64: Bool
    private var context: ChannelHandlerContext?
    /// Port i's connection.
    private var connections: [PodPortConnection] = []
    /// A message in fragments (a frame without FIN, then continuations).
    private var assembler = WebSocketMessageAssembler()
    private var closing = false

    init(request: PortForwardStreamRequest, ports: [Int], version: String) {
        self.request = request
        self.ports = ports
        base64 = version.contains(".base64.")
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Made now, so that what the client sends right after the 101 is held for its port...
        let reading = context.channel.isWritable
        connections = ports.map { PodPortConnection(port: $0, loop: context.eventLoop, reading: reading, delegate: self) }
        // ...and started once the upgrade's pipeline changes are done (they are under way in this
        // very turn): the ports go first on every channel, then the connects.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    private func start() {
        guard let context, !closing else { return }
        for (index, port) in ports.enumerated() {
            var number = context.channel.allocator.buffer(capacity: 2)
            number.writeInteger(UInt16(port), endianness: .little)
            send(channel: 2 * index, number)
            send(channel: 2 * index + 1, number)
        }
        context.flush()
        for connection in connections { connection.connect(with: request) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .continuation:
            switch assembler.add(frame) {
            case .message(let message): handle(message, context: context)
            case .incomplete: break
            case .failure(let code): close(context, code: code)
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(context, code: .normalClosure)
        default:
            break
        }
    }

    /// A whole message from the client: `[2i][bytes]` for port i. Messages on an error channel or
    /// an unknown one are dropped, as the kubelet's are.
    private func handle(_ message: ByteBuffer, context: ChannelHandlerContext) {
        var message = message
        guard var channel = message.readInteger(as: UInt8.self).map(Int.init) else { return }
        var payload = message
        if base64 {
            channel -= Int(UInt8(ascii: "0"))
            guard let decoded = Data(base64Encoded: Data(message.readableBytesView)) else {
                return close(context, code: .dataInconsistentWithMessage)
            }
            payload = context.channel.allocator.buffer(bytes: decoded)
        }
        guard channel >= 0, channel % 2 == 0, channel / 2 < connections.count, payload.readableBytes > 0 else { return }
        let connection = connections[channel / 2]
        connection.write(payload)
        if !connection.isWritable {
            // The pod does not keep up: stop reading the client until its socket drains.
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } // a closed connection reads nothing anyway
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for connection in connections { connection.close() }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for connection in connections where !connection.finished { connection.setReading(writable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A frame the decoder refused (too large, malformed): 1002 then the close.
        close(context, code: error is NIOWebSocketError ? .protocolError : .unexpectedServerError)
    }

    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closing else { return }
        closing = true
        for connection in connections { connection.close() }
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    /// One message on `channel` (not flushed).
    private func send(channel: Int, _ bytes: ByteBuffer) {
        guard let context else { return }
        var message = context.channel.allocator.buffer(capacity: bytes.readableBytes + 1)
        if base64 {
            message.writeInteger(UInt8(ascii: "0") + UInt8(channel))
            message.writeString(Data(bytes.readableBytesView).base64EncodedString())
        } else {
            message.writeInteger(UInt8(channel))
            var bytes = bytes
            message.writeBuffer(&bytes)
        }
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: base64 ? .text : .binary, data: message)), promise: nil)
    }

    private func index(of connection: PodPortConnection) -> Int? {
        connections.firstIndex { $0 === connection }
    }

    /// Every port is done: the session ends.
    private func closeWhenDone() {
        guard let context, connections.allSatisfy(\.finished) else { return }
        close(context, code: .normalClosure)
    }

    // MARK: PodPortConnectionDelegate

    func podConnection(_ connection: PodPortConnection, failed error: any Error) {
        guard let context, let index = index(of: connection) else { return }
        send(channel: 2 * index + 1, context.channel.allocator.buffer(string: "error forwarding port \(connection.port) to pod: \(error)"))
        context.flush()
        resumeReading()
        closeWhenDone()
    }

    func podConnection(_ connection: PodPortConnection, read buffer: ByteBuffer) {
        guard let context, let index = index(of: connection) else { return }
        send(channel: 2 * index, buffer)
        context.flush()
    }

    func podConnectionEnded(_ connection: PodPortConnection) {
        // v4 cannot tell the client that one channel ended: the port is done when its socket closes.
    }

    func podConnectionClosed(_ connection: PodPortConnection) {
        resumeReading()
        closeWhenDone()
    }

    func podConnectionWritable(_ connection: PodPortConnection) {
        resumeReading()
    }

    /// Reads the client again once every port still open can take more (a port that is done
    /// takes nothing, so it no longer holds the client back).
    private func resumeReading() {
        guard let context, !closing, connections.allSatisfy({ $0.finished || $0.isWritable }) else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } // as above
    }
}
