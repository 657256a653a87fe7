import Foundation
import Glibc
import NIOCore
import NIOPosix

/// What a ``PodPortConnection`` tells the port-forward session that owns it, on the session's
/// event loop.
protocol PodPortConnectionDelegate: AnyObject {
    /// The connection could not be made (refused, no such port, the pod's namespace is gone): the
    /// error names the address and the errno. Nothing follows.
    func podConnection(_ connection: PodPortConnection, failed error: any Error)
    /// Bytes the pod sent.
    func podConnection(_ connection: PodPortConnection, read buffer: ByteBuffer)
    /// The pod's direction ended (its FIN, or the socket closed): nothing more will be read. The
    /// client's direction gets ``PodPortConnection/linger`` more, then the socket is closed.
    func podConnectionEnded(_ connection: PodPortConnection)
    /// The socket is closed (after the linger, a reset, or ``PodPortConnection/close()``).
    func podConnectionClosed(_ connection: PodPortConnection)
    /// ``PodPortConnection/isWritable`` became true again: the session may read its client again.
    func podConnectionWritable(_ connection: PodPortConnection)
}

/// One forwarded TCP connection to a port of the pod: the part of port forwarding that does not
/// depend on the framing (SPDY stream pairs, WebSocket channels). The connect runs off the event
/// loop (``PortForwardStreamRequest/connect`` enters the pod's network namespace and may wait up to
/// its deadline); the connected socket then becomes a NIO channel on the session's event loop.
/// What the client sends before that is held, and counts against ``isWritable``. Back-pressure
/// both ways: the pod is read only while the session says so (``setReading(_:)``, its client's
/// connection being writable), and the session stops reading its client while ``isWritable`` is
/// false. When the pod's direction ends, the client's gets ``linger`` to finish (containerd's rule:
/// once one direction ends, wait at most a second for the other), then the socket is closed. Used
/// only on the session's event loop.
final class PodPortConnection {
    /// How long the client's direction may go on once the pod's has ended.
    static let linger = TimeAmount.seconds(1)
    /// Bytes held for a connection still being made before ``isWritable`` turns false.
    static let pendingLimit = 1 << 20

    /// The port in the pod.
    let port: Int
    private let loop: EventLoop
    private weak var delegate: (any PodPortConnectionDelegate)?
    private var socket: Channel?
    /// What the client sent before the socket was there.
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    /// The client's direction is over: half-close the socket once it is there.
    private var outputFinished = false
    private var reading: Bool
    private var connecting = false
    private var ended = false
    /// Over: failed, closed, or given up by the session. Nothing more is reported.
    private(set) var finished = false
    /// The last writability reported, so that ``PodPortConnectionDelegate/podConnectionWritable(_:)``
    /// comes only on a change.
    private var wasWritable = true

    /// `reading`: whether the pod is read from the start (the client's connection is writable).
    init(port: Int, loop: EventLoop, reading: Bool, delegate: any PodPortConnectionDelegate) {
        self.port = port
        self.loop = loop
        self.reading = reading
        self.delegate = delegate
    }

    /// Whether the client may send more now: the socket takes it (or, before it is there, less
    /// than ``pendingLimit`` is held).
    var isWritable: Bool {
        if let socket { return socket.isWritable }
        return pendingBytes < Self.pendingLimit
    }

    /// Makes the connection (once).
    func connect(with request: PortForwardStreamRequest) {
        guard !connecting, !finished else { return }
        connecting = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        let connect = request.connect
        let port = self.port
        let loop = self.loop
        DispatchQueue.global().async {
            let result = Result { try connect(port) }
            loop.execute { bound.value.connected(result) }
        }
    }

    /// Sends `buffer` to the pod (flushed), or holds it until the socket is there.
    func write(_ buffer: ByteBuffer) {
        guard !finished, !outputFinished, buffer.readableBytes > 0 else { return }
        if let socket {
            socket.writeAndFlush(buffer, promise: nil)
        } else {
            pending.append(buffer)
            pendingBytes += buffer.readableBytes
        }
        wasWritable = isWritable
    }

    /// The client's direction is over: the pod sees a FIN (once what was written got there).
    func finishWriting() {
        guard !outputFinished else { return }
        outputFinished = true
        if let socket { Self.halfClose(socket) }
    }

    /// Reads the pod (or stops reading it) as the client's connection can take more (or not).
    func setReading(_ on: Bool) {
        reading = on
        socket?.setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in } // a closed socket reads nothing anyway
    }

    /// The session is going away: the socket is closed now and nothing more is reported.
    func close() {
        finished = true
        delegate = nil
        socket?.close(promise: nil)
    }

    // MARK: From the connect and the socket

    private func connected(_ result: Result<Int32, any Error>) {
        let fd: Int32
        switch result {
        case .failure(let error):
            fail(error)
            return
        case .success(let socket):
            fd = socket
        }
        guard !finished else {
            Glibc.close(fd)
            return
        }
        let bound = NIOLoopBound(self, eventLoop: loop)
        let relay = PodSocketRelay(connection: bound)
        ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: reading)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(relay) }
            }
            // Once the bootstrap has the descriptor, a failure closes it: it is not closed here again
            // (its number may already be someone else's).
            .withConnectedSocket(fd)
            .whenComplete { result in
                let connection = bound.value
                switch result {
                case .success(let channel): connection.attached(channel)
                case .failure(let error): connection.fail(error)
                }
            }
    }

    private func attached(_ channel: Channel) {
        guard !finished else {
            channel.close(promise: nil)
            return
        }
        socket = channel
        for buffer in pending { channel.write(buffer, promise: nil) }
        pending.removeAll()
        pendingBytes = 0
        channel.flush()
        if outputFinished { Self.halfClose(channel) }
        writabilityChanged()
    }

    private func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        pending.removeAll()
        let delegate = self.delegate
        self.delegate = nil
        delegate?.podConnection(self, failed: error)
    }

    fileprivate func read(_ buffer: ByteBuffer) {
        guard !finished else { return }
        delegate?.podConnection(self, read: buffer)
    }

    fileprivate func podEnded() {
        guard !ended, !finished else { return }
        ended = true
        delegate?.podConnectionEnded(self)
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.scheduleTask(in: Self.linger) { bound.value.socket?.close(promise: nil) }
    }

    fileprivate func socketClosed() {
        podEnded()
        guard !finished else { return }
        finished = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.podConnectionClosed(self)
    }

    fileprivate func writabilityChanged() {
        let writable = isWritable
        defer { wasWritable = writable }
        if writable && !wasWritable && !finished { delegate?.podConnectionWritable(self) }
    }

    /// A FIN to the pod; a socket that cannot take one is closed.
    private static func halfClose(_ socket: Channel) {
        socket.close(mode: .output).whenFailure { _ in socket.close(promise: nil) }
    }
}

/// The handler on a pod socket: hands what it reads and its end to the ``PodPortConnection``.
private final class PodSocketRelay: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let connection: NIOLoopBound<PodPortConnection>

    init(connection: NIOLoopBound<PodPortConnection>) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.value.read(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { connection.value.podEnded() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.value.socketClosed()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.value.writabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A reset by the pod: the socket goes, which ends the pod's direction.
        context.close(promise: nil)
    }
}
