import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PodshimSPDY
import Synchronization

// The client side of the CRI streaming protocol, as a kubelet or crictl speaks it to a runtime's
// streaming server: the URL an Exec, Attach or PortForward RPC returns, upgraded from HTTP/1.1 to
// SPDY/3.1 with `v4.channel.k8s.io` (exec, attach) or `portforward.k8s.io`. The framing is
// PodshimSPDY's, the same the daemon's server uses.

/// A streaming URL as Exec, Attach and PortForward return it: `http://127.0.0.1:41235/exec/<token>`.
struct CtlStreamURL: Sendable, CustomStringConvertible {
    let host: String
    let port: Int
    /// The path and query, as the request line sends them.
    let target: String
    let description: String

    init(_ text: String) throws(CtlError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              var host = components.host, !host.isEmpty else {
            throw CtlError.failed("the daemon answered with a streaming URL that is not one: \"\(text)\"")
        }
        guard scheme == "http" else {
            throw CtlError.failed("the streaming URL \(text) is \(scheme)://; podshim ctl speaks plain http only")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        port = components.port ?? 80
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        self.target = target
        description = text
    }

    /// The `Host` header: the host (bracketed when it is an IPv6 address) and the port.
    var hostHeader: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }
}

/// The protocols (`X-Stream-Protocol-Version`) a streaming URL is upgraded to.
enum CtlStreamProtocol: String, Sendable {
    /// Exec and attach: an error stream for the status, stdin, stdout, stderr, resize.
    case remoteCommand = "v4.channel.k8s.io"
    /// Port forwarding: a pair of streams (error, data) per forwarded connection.
    case portForward = "portforward.k8s.io"
}

enum CtlStreamClient {
    /// How long the TCP connect may take (the upgrade is answered at once by a live server).
    static let connectTimeout = TimeAmount.seconds(10)

    /// Connects to `url`, sends the upgrade request (`Upgrade: SPDY/3.1`, `Connection: Upgrade`,
    /// `X-Stream-Protocol-Version`) and checks the 101; the channel then carries SPDY frames.
    /// A refusal (any other status) is reported with the server's status line and text.
    static func connect(to url: CtlStreamURL, speaking version: CtlStreamProtocol) async throws -> NIOAsyncChannel<SPDYFrame, SPDYFrame> {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        headers.add(name: "Content-Length", value: "0")
        // POST, as client-go's executor and port forwarder send it.
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target, headers: headers)
        let upgrader = CtlSPDYUpgrader(version: version.rawValue)
        let outcome: EventLoopFuture<CtlUpgradeOutcome>
        do {
            outcome = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(connectTimeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: url.host, port: url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let upgrade = NIOTypedHTTPClientUpgradeConfiguration<CtlUpgradeOutcome>(
                            upgradeRequestHead: head, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture {
                                    let reader = CtlHTTPRefusalReader(promise: channel.eventLoop.makePromise())
                                    try channel.pipeline.syncOperations.addHandler(reader)
                                    return .refused(channel, reader.refusal)
                                }
                            })
                        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: upgrade)
                        // Bytes that come with the 101 belong to the SPDY session.
                        configuration.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration)
                    }
                }
        } catch {
            throw CtlError.failed("cannot connect to the streaming server at \(url.hostHeader): \(reason(error))")
        }
        let result: CtlUpgradeOutcome
        do {
            result = try await outcome.get()
        } catch let error as NIOHTTPClientUpgradeError {
            throw CtlError.failed("the streaming server at \(url.hostHeader) did not switch to SPDY/3.1 with \(version.rawValue) (\(error))")
        } catch {
            throw CtlError.failed("the upgrade to SPDY/3.1 at \(url.hostHeader) failed: \(error)")
        }
        switch result {
        case .upgraded(let channel):
            return channel
        case .refused(let channel, let refusal):
            let answer = try? await refusal.get() // the reader always succeeds; nil only if it was never added
            channel.close(promise: nil)
            guard let answer else { throw CtlError.failed("the streaming server at \(url.hostHeader) refused the upgrade") }
            var text = answer.body.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { text = answer.status.reasonPhrase }
            throw CtlError.failed("the streaming server refused \(url.target): \(answer.status.code) \(text)")
        }
    }
}

extension CtlStreamClient {
    /// A socket error as a person reads it: `Connection refused` rather than NIO's wrapping.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let io as IOError:
            return String(cString: strerror(io.errnoCode))
        case let connection as NIOConnectionError:
            return connection.connectionErrors.first.map { reason($0.error) } ?? String(describing: connection)
        case let channel as ChannelError:
            if case .connectTimeout = channel { return "timed out" }
            return String(describing: channel)
        default:
            return String(describing: error)
        }
    }
}

/// How the upgrade request ended.
enum CtlUpgradeOutcome: Sendable {
    case upgraded(NIOAsyncChannel<SPDYFrame, SPDYFrame>)
    /// Any status but 101: the connection, and the response as the server sent it.
    case refused(any Channel, EventLoopFuture<CtlHTTPRefusal>)
}

/// A response that is not a 101: its status and the start of its text.
struct CtlHTTPRefusal: Sendable {
    var status: HTTPResponseStatus
    var body: String
}

/// `SPDY/3.1` for NIO's typed client upgrade: adds `X-Stream-Protocol-Version`, requires the 101
/// to say `Connection: Upgrade` and to agree on that version, then puts the SPDY framing on the
/// channel and wraps it for async use.
struct CtlSPDYUpgrader: NIOTypedHTTPClientProtocolUpgrader {
    typealias UpgradeResult = CtlUpgradeOutcome

    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []
    let version: String

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {
        upgradeRequestHeaders.add(name: "X-Stream-Protocol-Version", value: version)
    }

    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool {
        let connection = upgradeResponse.headers[canonicalForm: "connection"].map { $0.lowercased() }
        let agreed = upgradeResponse.headers[canonicalForm: "x-stream-protocol-version"].map(String.init)
        return connection.contains("upgrade") && agreed.contains(version)
    }

    func upgrade(channel: any Channel, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<CtlUpgradeOutcome> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(CtlSPDYFrameCodec())
            return .upgraded(try NIOAsyncChannel<SPDYFrame, SPDYFrame>(wrappingChannelSynchronously: channel))
        }
    }
}

/// Collects a refused upgrade's response (its status and up to 4 KiB of its text).
final class CtlHTTPRefusalReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<CtlHTTPRefusal>
    private var status = HTTPResponseStatus.badGateway
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<CtlHTTPRefusal>) {
        self.promise = promise
    }

    var refusal: EventLoopFuture<CtlHTTPRefusal> { promise.futureResult }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
        case .body(let buffer):
            body += buffer.readableBytesView.prefix(max(0, 4096 - body.count))
        case .end:
            finish()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish()
        context.close(promise: nil)
    }

    private func finish() {
        // A second completion (the close after the end) is ignored by the promise.
        promise.succeed(CtlHTTPRefusal(status: status, body: String(decoding: body, as: UTF8.self)))
    }
}

/// Bytes ↔ SPDY frames on the upgraded connection, with the connection's one decoder and one
/// encoder (each direction keeps its header compression). The server's PINGs are echoed here; the
/// echoes of ours are dropped. A protocol error sends GOAWAY (PROTOCOL_ERROR), closes, and reaches
/// the session as the error that ended it.
final class CtlSPDYFrameCodec: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = SPDYFrame
    typealias OutboundIn = SPDYFrame
    typealias OutboundOut = ByteBuffer

    private let decoder = SPDYFrameDecoder()
    private let encoder = SPDYFrameEncoder()
    private var failed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        decoder.feed(unwrapInboundIn(data).readableBytesView)
        do {
            while let frame = try decoder.next() {
                if case .ping(let id) = frame {
                    // Even ids are the server's: echoed. Odd ones are the echoes of ours.
                    if id % 2 == 0 { context.writeAndFlush(wrapOutboundOut(encode(.ping(id: id), context)), promise: nil) }
                    continue
                }
                context.fireChannelRead(wrapInboundOut(frame))
            }
        } catch {
            failed = true
            context.fireErrorCaught(error)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(encode(.goAway(lastGoodStreamID: 0, status: 1), context)))
                .whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(wrapOutboundOut(encode(unwrapOutboundIn(data), context)), promise: promise)
    }

    private func encode(_ frame: SPDYFrame, _ context: ChannelHandlerContext) -> ByteBuffer {
        context.channel.allocator.buffer(bytes: encoder.encode(frame))
    }
}

/// The client's side of one SPDY/3.1 session. Streams are opened with odd ids in increasing order
/// whichever task opens them (the SYN_STREAM is queued on the event loop under the lock that hands
/// out the id), and `open` returns once the server answered with SYN_REPLY, as client-go's
/// CreateStream waits before the next one. DATA goes through the channel's async writer, which
/// suspends while the connection cannot take more. The session's reader (`read`) settles the
/// replies; when it ends, every open still waiting fails.
final class CtlSPDYConnection: Sendable {
    /// How long the server has to answer a SYN_STREAM (the server's own limit for a stream set).
    static let replyTimeout = TimeAmount.seconds(30)
    /// How often a PING goes out (client-go's period): the server's idle timer restarts on any frame.
    static let pingInterval = Duration.seconds(5)
    /// Largest DATA payload sent in one frame.
    static let maximumPayload = 64 << 10

    let channel: any Channel
    private let outbound: NIOAsyncChannelOutboundWriter<SPDYFrame>
    private let state = Mutex(State())

    private struct State {
        var nextStream: UInt32 = 1
        var nextPing: UInt32 = 1
        /// Streams opened and not answered yet.
        var waiting: [UInt32: EventLoopPromise<Void>] = [:]
        /// Why the session ended, once it has.
        var ended: (any Error)?
    }

    init(channel: any Channel, outbound: NIOAsyncChannelOutboundWriter<SPDYFrame>) {
        self.channel = channel
        self.outbound = outbound
    }

    /// Opens a stream with `headers` and returns its id once the server accepted it. `register`
    /// runs with the id before the SYN_STREAM can reach the server, so the reader knows the stream
    /// before anything arrives on it.
    func open(_ headers: SPDYHeaders, register: (UInt32) -> Void = { _ in }) async throws -> UInt32 {
        let channel = self.channel
        let (id, reply) = try state.withLock { state throws(CtlError) -> (UInt32, EventLoopFuture<Void>) in
            if let ended = state.ended { throw ended as? CtlError ?? CtlError.failed("\(ended)") }
            let id = state.nextStream
            state.nextStream += 2
            let promise = channel.eventLoop.makePromise(of: Void.self)
            state.waiting[id] = promise
            register(id)
            let frame = SPDYFrame.synStream(streamID: id, associatedStreamID: 0, priority: 0, flags: 0, headers: headers)
            channel.eventLoop.execute { channel.writeAndFlush(frame, promise: nil) }
            return (id, promise.futureResult)
        }
        let what = headers["streamtype"].map { "the \($0) stream" } ?? "stream \(id)"
        channel.eventLoop.scheduleTask(in: Self.replyTimeout) {
            self.settle(id, .failure(CtlError.failed("the streaming server did not accept \(what) within 30 s")))
        }
        do {
            try await reply.get()
        } catch let error as CtlSPDYResetError {
            throw CtlError.failed("the streaming server refused \(what) (\(error.status))")
        }
        return id
    }

    /// Writes `bytes` on stream `id` (in frames of at most 64 KiB), the last frame with FIN when
    /// `fin`; an empty `bytes` with `fin` is an empty FIN frame. Suspends while the connection is
    /// not writable.
    func send(_ bytes: [UInt8], on id: UInt32, fin: Bool = false) async throws {
        var start = 0
        repeat {
            let end = min(bytes.count, start + Self.maximumPayload)
            let flags = fin && end == bytes.count ? SPDYFrame.flagFin : 0
            try await outbound.write(.data(streamID: id, flags: flags, payload: Array(bytes[start..<end])))
            start = end
        } while start < bytes.count
    }

    func send(_ buffer: ByteBuffer, on id: UInt32, fin: Bool = false) async throws {
        try await send(Array(buffer.readableBytesView), on: id, fin: fin)
    }

    /// Resets stream `id` (RST_STREAM CANCEL unless told otherwise).
    func reset(_ id: UInt32, status: SPDYResetStatus = .cancel) {
        enqueue(.rstStream(streamID: id, status: status))
    }

    /// PINGs every `pingInterval` until cancelled.
    func keepAlive() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: Self.pingInterval)
            } catch {
                return
            }
            let id = state.withLock { state in
                defer { state.nextPing &+= 2 }
                return state.nextPing
            }
            enqueue(.ping(id: id))
        }
    }

    /// Says goodbye (GOAWAY, status OK) and waits until it is written (and with it all before it).
    func goAway() async {
        try? await enqueue(.goAway(lastGoodStreamID: 0, status: 0)).get() // a connection already gone needs no goodbye
    }

    /// Reads the session's frames until it ends (or `handle` returns false): SYN_REPLY and
    /// RST_STREAM first settle `open`'s waits, a SYN_STREAM from the server is refused, then every
    /// frame goes to `handle`. However it ends, opens still waiting fail with the reason.
    func read(_ inbound: NIOAsyncChannelInboundStream<SPDYFrame>, _ handle: (SPDYFrame) async throws -> Bool) async throws {
        do {
            try await readFrames(inbound, handle)
        } catch let error as SPDYProtocolError {
            let broken = CtlError.failed("the streaming server broke the protocol: \(error)")
            end(because: broken)
            throw broken
        } catch {
            end(because: error)
            throw error
        }
        end(because: CtlError.failed("the streaming connection closed"))
    }

    private func readFrames(_ inbound: NIOAsyncChannelInboundStream<SPDYFrame>, _ handle: (SPDYFrame) async throws -> Bool) async throws {
        for try await frame in inbound {
            switch frame {
            case .synReply(let id, _, _):
                settle(id, .success(()))
            case .rstStream(let id, let status):
                settle(id, .failure(CtlSPDYResetError(status: status)))
            case .synStream(let id, _, _, _, _):
                reset(id, status: .refusedStream) // servers never open streams here
                continue
            default:
                break
            }
            if try await !handle(frame) { return }
        }
    }

    private func settle(_ id: UInt32, _ result: Result<Void, any Error>) {
        let promise = state.withLock { $0.waiting.removeValue(forKey: id) }
        promise?.completeWith(result)
    }

    private func end(because reason: any Error) {
        let waiting = state.withLock { state in
            if state.ended == nil { state.ended = reason }
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for promise in waiting { promise.fail(reason) }
    }

    /// Queues a control frame on the event loop, in the order of the calls.
    @discardableResult
    private func enqueue(_ frame: SPDYFrame) -> EventLoopFuture<Void> {
        let channel = self.channel
        return channel.eventLoop.flatSubmit { channel.writeAndFlush(frame) }
    }
}

/// The server reset a stream.
struct CtlSPDYResetError: Error {
    var status: SPDYResetStatus
}
