import Foundation
import NIOCore
import NIOPosix
import PodshimSPDY
import PodshimSystem

/// A PortForward the CRI accepted: how to open a TCP connection to a port of the pod (in its
/// network namespace), returning a connected socket the session then owns.
public struct PortForwardStreamRequest: Sendable {
    public var connect: @Sendable (_ port: Int) throws -> Int32

    public init(connect: @escaping @Sendable (_ port: Int) throws -> Int32) {
        self.connect = connect
    }
}

/// Port forwarding over SPDY/3.1 (`portforward.k8s.io`): each forwarded connection is a pair of
/// streams with the same `port` and `requestid` headers, `error` then `data`. When both are there
/// the session connects to the port inside the pod (off the event loop: the connect enters the
/// pod's network namespace), then copies bytes both ways; the client's FIN half-closes the pod
/// side, the pod's end FINs the data stream. A failure (refused, no such port) is written on the
/// error stream and the data stream reset. Many pairs run at once on one session.
final class SPDYPortForwardSession: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client has to complete a pair of streams.
    static let pairTimeout = TimeAmount.seconds(30)

    private struct Pair {
        var port: Int
        var error: UInt32?
        var data: UInt32?
        var socket: Channel?
        var dataFinished = false
        var connecting = false
    }

    private let request: PortForwardStreamRequest
    private let connection = SPDYConnection()
    private var context: ChannelHandlerContext?
    private var pairs: [String: Pair] = [:]
    private var pairOfStream: [UInt32: String] = [:]
    private var lastStream: UInt32 = 0

    init(request: PortForwardStreamRequest) {
        self.request = request
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.read(unwrapInboundIn(data), context: context, isKnown: { self.pairOfStream[$0] != nil }, lastGood: { self.lastStream }) { frame in
            handle(frame, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for pair in pairs.values { pair.socket?.close(promise: nil) }
        pairs.removeAll()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for pair in pairs.values { pair.socket?.setOption(ChannelOptions.autoRead, value: writable).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func handle(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        switch frame {
        case .synStream(let id, _, _, _, let headers):
            guard id > lastStream else {
                write(.rstStream(streamID: id, status: .protocolError), context: context)
                return
            }
            lastStream = id
            let type = headers["streamtype"]?.lowercased() ?? ""
            guard type == "error" || type == "data", let port = headers["port"].flatMap(Int.init), (1...65535).contains(port) else {
                write(.rstStream(streamID: id, status: .refusedStream), context: context)
                return
            }
            // Without a request id the pair is found by stream ids, as cri-streaming does.
            let key = headers["requestid"] ?? String(type == "error" ? id : id &- 2)
            var pair = pairs[key] ?? Pair(port: port)
            if (type == "error" ? pair.error != nil : pair.data != nil) || pair.port != port {
                write(.rstStream(streamID: id, status: .protocolError), context: context)
                return
            }
            if type == "error" { pair.error = id } else { pair.data = id }
            pairs[key] = pair
            pairOfStream[id] = key
            write(.synReply(streamID: id, flags: 0, headers: SPDYHeaders()), context: context)
            if pair.error != nil && pair.data != nil {
                connect(key, context: context)
            } else if pair.error == nil || pair.data == nil {
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: Self.pairTimeout) {
                    let session = bound.value
                    if let pair = session.pairs[key], pair.error == nil || pair.data == nil { session.abandon(key) }
                }
            }
        case .data(let id, let flags, let payload):
            guard let key = pairOfStream[id], var pair = pairs[key], id == pair.data else { return }
            if !payload.isEmpty, let socket = pair.socket {
                socket.writeAndFlush(context.channel.allocator.buffer(bytes: payload), promise: nil)
                if !socket.isWritable {
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                }
            } else if !payload.isEmpty {
                pendingData[key, default: []].append(payload)
            }
            if flags & SPDYFrame.flagFin != 0 {
                pair.dataFinished = true
                pairs[key] = pair
                if let socket = pair.socket { halfClose(socket) }
            }
        case .ping(let id):
            write(.ping(id: id), context: context)
        case .rstStream(let id, _):
            if let key = pairOfStream[id], id == pairs[key]?.data { abandon(key) }
        case .goAway:
            context.close(promise: nil)
        case .synReply, .headers, .settings, .windowUpdate:
            break
        }
    }

    private var pendingData: [String: [[UInt8]]] = [:]

    private func connect(_ key: String, context: ChannelHandlerContext) {
        guard var pair = pairs[key], !pair.connecting else { return }
        pair.connecting = true
        pairs[key] = pair
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let connect = request.connect
        let port = pair.port
        DispatchQueue.global().async {
            let result = Result { try connect(port) }
            loop.execute { bound.value.connected(key, result) }
        }
    }

    private func connected(_ key: String, _ result: Result<Int32, any Error>) {
        guard let context, let pair = pairs[key] else {
            if case .success(let fd) = result { close(fd) }
            return
        }
        let fd: Int32
        switch result {
        case .failure(let error):
            if let errorStream = pair.error {
                write(.data(streamID: errorStream, flags: 0,
                            payload: Array("error forwarding port \(pair.port) to pod: \(error)".utf8)), context: context)
                write(.data(streamID: errorStream, flags: SPDYFrame.flagFin, payload: []), context: context)
            }
            if let data = pair.data { write(.rstStream(streamID: data, status: .cancel), context: context) }
            context.flush()
            forget(key)
            return
        case .success(let socket):
            fd = socket
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let relay = SocketRelay(key: key, session: bound)
        ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: context.channel.isWritable)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(relay) }
            }
            .withConnectedSocket(fd)
            .whenComplete { result in
                let session = bound.value
                switch result {
                case .success(let channel):
                    guard var pair = session.pairs[key] else {
                        channel.close(promise: nil)
                        return
                    }
                    pair.socket = channel
                    session.pairs[key] = pair
                    for payload in session.pendingData.removeValue(forKey: key) ?? [] {
                        channel.write(channel.allocator.buffer(bytes: payload), promise: nil)
                    }
                    channel.flush()
                    if pair.dataFinished { session.halfClose(channel) }
                case .failure(let error):
                    close(fd)
                    session.connected(key, .failure(error))
                }
            }
    }

    private func halfClose(_ socket: Channel) {
        socket.close(mode: .output).whenFailure { _ in socket.close(promise: nil) }
    }

    fileprivate func fromPod(_ buffer: ByteBuffer, key: String) {
        guard let context, let data = pairs[key]?.data else { return }
        write(.data(streamID: data, flags: 0, payload: Array(buffer.readableBytesView)), context: context)
        context.flush()
    }

    /// The pod side ended (its FIN or the socket closed): the data stream ends, and the pair with it.
    fileprivate func podEnded(_ key: String) {
        guard let context, let pair = pairs[key] else { return }
        if let data = pair.data { write(.data(streamID: data, flags: SPDYFrame.flagFin, payload: []), context: context) }
        if let error = pair.error { write(.data(streamID: error, flags: SPDYFrame.flagFin, payload: []), context: context) }
        context.flush()
        // The client's direction gets a moment to finish, then the socket goes.
        let socket = pair.socket
        context.eventLoop.scheduleTask(in: .seconds(1)) { socket?.close(promise: nil) }
        forget(key)
    }

    fileprivate func podWritable() {
        context?.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
    }

    private func abandon(_ key: String) {
        pairs[key]?.socket?.close(promise: nil)
        forget(key)
    }

    private func forget(_ key: String) {
        if let pair = pairs.removeValue(forKey: key) {
            for id in [pair.error, pair.data].compactMap({ $0 }) { pairOfStream[id] = nil }
        }
        pendingData[key] = nil
    }

    private func write(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        connection.write(frame, context: context)
    }
}

/// Copies what the pod sends into the pair's data stream.
private final class SocketRelay: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let key: String
    let session: NIOLoopBound<SPDYPortForwardSession>

    init(key: String, session: NIOLoopBound<SPDYPortForwardSession>) {
        self.key = key
        self.session = session
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.value.fromPod(unwrapInboundIn(data), key: key)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { session.value.podEnded(key) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.value.podEnded(key)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session.value.podWritable() }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
