import NIOCore
import PodshimSPDY

/// A PortForward the CRI accepted: how to open a TCP connection to a port of the pod (in its
/// network namespace), returning a connected socket the session then owns.
public struct PortForwardStreamRequest: Sendable {
    public var connect: @Sendable (_ port: Int) throws -> Int32

    public init(connect: @escaping @Sendable (_ port: Int) throws -> Int32) {
        self.connect = connect
    }
}

/// Port forwarding over SPDY/3.1 (`portforward.k8s.io`): each forwarded connection is a pair of
/// streams with the same `port` and `requestid` headers, `error` then `data`, and one
/// ``PodPortConnection``, made with the pair's first stream so that what the client sends early is
/// held (within the connection's limit). When both streams are there the connection is made, then
/// bytes are copied both ways: the client's FIN half-closes the pod side; the pod's end FINs the
/// data and error streams, and the client's direction gets the connection's linger more. A failure
/// (refused, no such port) is written on the error stream, which ends, and the data stream is
/// reset. A reset of the data stream abandons the pair, as does a pair not complete after
/// ``pairTimeout``. Many pairs run at once on one session.
final class SPDYPortForwardSession: ChannelInboundHandler, PodPortConnectionDelegate {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long the client has to complete a pair of streams.
    static let pairTimeout = TimeAmount.seconds(30)

    private struct Pair {
        var error: UInt32?
        var data: UInt32?
        let connection: PodPortConnection
        /// Tells this pair from a later one with the same request id.
        let serial: Int
    }

    private let request: PortForwardStreamRequest
    private let spdy = SPDYConnection()
    private var context: ChannelHandlerContext?
    /// The pairs by request id, until their connection failed or closed or the pair was abandoned.
    private var pairs: [String: Pair] = [:]
    private var pairOfStream: [UInt32: String] = [:]
    /// The pair of each pod connection: the delegate calls name the connection.
    private var pairOfConnection: [ObjectIdentifier: String] = [:]
    private var lastStream: UInt32 = 0
    private var pairsMade = 0

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
        spdy.read(unwrapInboundIn(data), context: context, isKnown: { self.pairOfStream[$0] != nil }, lastGood: { self.lastStream }) { frame in
            handle(frame, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for pair in pairs.values { pair.connection.close() }
        pairs.removeAll()
        pairOfStream.removeAll()
        pairOfConnection.removeAll()
        context.fireChannelInactive()
    }

    /// The client's connection can take more (or not): every pod connection is read (or not), the
    /// ones still being made included.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        for pair in pairs.values where !pair.connection.finished { pair.connection.setReading(writable) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func handle(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        switch frame {
        case .synStream(let id, _, _, _, let headers):
            open(id, headers: headers, context: context)
        case .data(let id, let flags, let payload):
            guard let key = pairOfStream[id], let pair = pairs[key], id == pair.data else { return }
            if !payload.isEmpty {
                pair.connection.write(context.channel.allocator.buffer(bytes: payload))
                if !pair.connection.isWritable {
                    // The pod does not keep up: stop reading the client until its socket drains.
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in } // a closed connection reads nothing anyway
                }
            }
            if flags & SPDYFrame.flagFin != 0 { pair.connection.finishWriting() }
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

    /// A SYN_STREAM: one stream of a pair, accepted (SYN_REPLY) or reset. The pair's first stream
    /// makes its connection and starts its timeout; the second starts the connect.
    private func open(_ id: UInt32, headers: SPDYHeaders, context: ChannelHandlerContext) {
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
        var pair: Pair
        if let existing = pairs[key] {
            guard (type == "error" ? existing.error : existing.data) == nil, existing.connection.port == port else {
                write(.rstStream(streamID: id, status: .protocolError), context: context)
                return
            }
            pair = existing
        } else {
            let connection = PodPortConnection(port: port, loop: context.eventLoop, reading: context.channel.isWritable, delegate: self)
            pairsMade += 1
            pair = Pair(connection: connection, serial: pairsMade)
            pairOfConnection[ObjectIdentifier(connection)] = key
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let serial = pair.serial
            context.eventLoop.scheduleTask(in: Self.pairTimeout) {
                let session = bound.value
                if let pair = session.pairs[key], pair.serial == serial, pair.error == nil || pair.data == nil {
                    session.abandon(key)
                }
            }
        }
        if type == "error" { pair.error = id } else { pair.data = id }
        pairs[key] = pair
        pairOfStream[id] = key
        write(.synReply(streamID: id, flags: 0, headers: SPDYHeaders()), context: context)
        if pair.error != nil && pair.data != nil { pair.connection.connect(with: request) }
    }

    /// The client gave the pair up (or never completed it): its socket closes now.
    private func abandon(_ key: String) {
        pairs[key]?.connection.close()
        forget(key)
    }

    /// The pair is over: its streams are unknown from now on, and it no longer holds the client back.
    private func forget(_ key: String) {
        guard let pair = pairs.removeValue(forKey: key) else { return }
        for id in [pair.error, pair.data].compactMap({ $0 }) { pairOfStream[id] = nil }
        pairOfConnection[ObjectIdentifier(pair.connection)] = nil
        resumeReading()
    }

    /// Reads the client again once every pair still open can take more.
    private func resumeReading() {
        guard let context, pairs.values.allSatisfy({ $0.connection.finished || $0.connection.isWritable }) else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } // a closed connection reads nothing anyway
    }

    private func write(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        spdy.write(frame, context: context)
    }

    /// The pair of `connection`, while it is still there.
    private func pair(of connection: PodPortConnection) -> (key: String, pair: Pair)? {
        guard let key = pairOfConnection[ObjectIdentifier(connection)], let pair = pairs[key] else { return nil }
        return (key, pair)
    }

    // MARK: PodPortConnectionDelegate

    func podConnection(_ connection: PodPortConnection, failed error: any Error) {
        guard let context, let found = pair(of: connection) else { return }
        let pair = found.pair
        if let errorStream = pair.error {
            write(.data(streamID: errorStream, flags: 0,
                        payload: Array("error forwarding port \(connection.port) to pod: \(error)".utf8)), context: context)
            write(.data(streamID: errorStream, flags: SPDYFrame.flagFin, payload: []), context: context)
        }
        if let data = pair.data { write(.rstStream(streamID: data, status: .cancel), context: context) }
        context.flush()
        forget(found.key)
    }

    func podConnection(_ connection: PodPortConnection, read buffer: ByteBuffer) {
        guard let context, let data = pair(of: connection)?.pair.data else { return }
        write(.data(streamID: data, flags: 0, payload: Array(buffer.readableBytesView)), context: context)
        context.flush()
    }

    /// The pod's direction ended: so do the data and error streams. The pair stays (the client's
    /// data still reaches the pod) until the socket closes.
    func podConnectionEnded(_ connection: PodPortConnection) {
        guard let context, let pair = pair(of: connection)?.pair else { return }
        for id in [pair.data, pair.error].compactMap({ $0 }) {
            write(.data(streamID: id, flags: SPDYFrame.flagFin, payload: []), context: context)
        }
        context.flush()
    }

    func podConnectionClosed(_ connection: PodPortConnection) {
        if let key = pair(of: connection)?.key { forget(key) }
    }

    func podConnectionWritable(_ connection: PodPortConnection) {
        resumeReading()
    }
}
