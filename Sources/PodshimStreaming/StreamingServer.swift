import Foundation
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import PodshimSystem
import Synchronization

/// What a streaming URL was made for.
public enum StreamingRequest: Sendable {
    /// An exec: the streams the client asked for, and how to start the process.
    case exec(ExecStreamRequest)
    /// An attach to a container's own process (its stdin and output).
    case attach(ExecStreamRequest)
    /// A port forward: how to connect to a port of the pod.
    case portForward(PortForwardStreamRequest)

    static let paths = ["exec", "attach", "portforward"]

    var path: String {
        switch self {
        case .exec: "exec"
        case .attach: "attach"
        case .portForward: "portforward"
        }
    }

    /// The `X-Stream-Protocol-Version`s served, most preferred first.
    var protocols: [String] {
        switch self {
        case .exec, .attach: ["v4.channel.k8s.io"]
        case .portForward: ["portforward.k8s.io"]
        }
    }
}

/// The CRI streaming server (Exec, Attach and PortForward): HTTP/1.1 on 127.0.0.1 at a
/// port chosen at start-up; a URL `http://127.0.0.1:<port>/exec/<token>` (or `/portforward/`)
/// (or `/attach/`) upgraded to SPDY/3.1 (the protocol a kubelet and crictl speak to a runtime)
/// with `v4.channel.k8s.io` (exec, attach) or `portforward.k8s.io`, or to a WebSocket
/// (`/portforward/<token>?port=P`: ``WebSocketPortForwardSession``). With ``Options/tls`` every
/// connection is TLS first and the URLs are `https://`.
public final class StreamingServer: Sendable {
    /// Where and how it serves.
    public struct Options: Sendable {
        /// The address to listen on (127.0.0.1: the kubelet on this node is the only client).
        public var host = "127.0.0.1"
        /// 0: a free port chosen at start-up.
        public var port = 0
        /// A session with no traffic either way for this long is closed (4 h, as containerd's).
        public var idleTimeoutSeconds: Int64 = 4 * 3600
        /// Sessions at once; one more is refused with 503.
        public var maximumSessions = 256
        /// Serve HTTPS with this certificate (nil: plain HTTP, fine on loopback).
        public var tls: TLS?

        public init(host: String = "127.0.0.1", port: Int = 0, idleTimeoutSeconds: Int64 = 4 * 3600, maximumSessions: Int = 256,
                    tls: TLS? = nil) {
            self.host = host
            self.port = port
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.maximumSessions = maximumSessions
            self.tls = tls
        }
    }

    /// The server's certificate: PEM files of its chain (the server's certificate first, then the
    /// intermediates) and of its private key, as containerd's `x509_key_pair_streaming` takes
    /// them. A streaming URL is reachable by whoever can reach the port, and its token is the only
    /// credential, so a listener on anything but loopback should have TLS.
    public struct TLS: Sendable, Equatable {
        public var certificateChainFile: String
        public var privateKeyFile: String

        public init(certificateChainFile: String, privateKeyFile: String) {
            self.certificateChainFile = certificateChainFile
            self.privateKeyFile = privateKeyFile
        }

        /// Reads both files and checks that they make a server certificate, so that a bad one
        /// stops `podshim serve` at start-up instead of leaving it without a streaming server.
        public func check() throws(PodshimError) {
            _ = try makeContext()
        }

        /// A TLS server context from the files: an error naming the file that cannot be read, holds
        /// no PEM certificate or key, or does not go with the other.
        func makeContext() throws(PodshimError) -> NIOSSLContext {
            let chainBytes = try Self.read(certificateChainFile, what: "TLS certificate chain")
            let keyBytes = try Self.read(privateKeyFile, what: "TLS private key")
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMBytes(chainBytes)
            } catch {
                throw PodshimError(.invalidArgument, operation: "TLS certificate chain", subject: certificateChainFile,
                                   message: "not a PEM certificate chain (\(error))")
            }
            guard !chain.isEmpty else {
                throw PodshimError(.invalidArgument, operation: "TLS certificate chain", subject: certificateChainFile,
                                   message: "holds no PEM certificate")
            }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
            } catch {
                throw PodshimError(.invalidArgument, operation: "TLS private key", subject: privateKeyFile,
                                   message: "not an unencrypted PEM private key (\(error))")
            }
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            do {
                return try NIOSSLContext(configuration: configuration)
            } catch {
                throw PodshimError(.invalidArgument, operation: "TLS private key", subject: privateKeyFile,
                                   message: "does not go with the certificate in \(certificateChainFile) (\(error))")
            }
        }

        /// A PEM file's bytes (a certificate and its key are small: at most 1 MiB is read).
        private static func read(_ path: String, what: String) throws(PodshimError) -> [UInt8] {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw PodshimError(.invalidArgument, operation: "read \(what)", subject: path, errno: .last) }
            defer { Glibc.close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while bytes.count <= 1 << 20 {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw PodshimError(.invalidArgument, operation: "read \(what)", subject: path, errno: .last) }
                if count == 0 { return bytes }
                bytes += chunk[..<count]
            }
            throw PodshimError(.invalidArgument, operation: "read \(what)", subject: path, message: "larger than 1 MiB: not a PEM file")
        }
    }

    public let tokens = StreamingTokens<StreamingRequest>()
    private let channel: Channel
    private let sessions: SessionCount
    /// Where URLs point: `http://127.0.0.1:<port>` (`https://` with TLS).
    public let baseURL: String

    /// Binds and starts serving.
    public init(options: Options = Options(), group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let tokens = self.tokens
        // Made once (it reads the files): every connection shares it.
        let tls = try options.tls?.makeContext()
        let sessions = SessionCount(maximum: options.maximumSessions, idleTimeout: .seconds(options.idleTimeoutSeconds))
        self.sessions = sessions
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // TLS under everything: the upgrade and the sessions see only plain bytes. A
                    // client that does not speak TLS fails the handshake and is closed.
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    // A connection must send its request (and, once upgraded, open its streams) soon.
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(allTimeout: StreamingHTTPHandler.requestTimeout),
                        IdleCloser(),
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                        HTTPResponseEncoder(),
                    ])
                    try channel.pipeline.syncOperations.addHandler(StreamingHTTPHandler(tokens: tokens, sessions: sessions))
                }
            }
            .bind(host: options.host, port: options.port).wait()
        let bound = channel.localAddress?.port ?? options.port
        baseURL = "\(tls == nil ? "http" : "https")://\(options.host.contains(":") ? "[\(options.host)]" : options.host):\(bound)"
    }

    /// Sessions running now.
    public var activeSessions: Int { sessions.current }

    /// A URL for `request`, or nil when too many are waiting.
    public func url(for request: StreamingRequest) -> String? {
        guard let token = tokens.insert(request) else { return nil }
        return baseURL + "/" + request.path + "/" + token
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// The HTTP request of a streaming URL: checks the token and the upgrade, answers 101 and hands
/// the connection to the SPDY session; anything else gets a plain HTTP error and a close.
final class StreamingHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long a connection may take to send its request.
    static let requestTimeout = TimeAmount.seconds(30)

    private let tokens: StreamingTokens<StreamingRequest>
    private let sessions: SessionCount
    /// An accepted upgrade, carried out at the request's end: the 101's headers and the handlers
    /// that take the connection over.
    private var accepted: (headers: HTTPHeaders, handlers: [any ChannelHandler])?
    private var refused = false

    init(tokens: StreamingTokens<StreamingRequest>, sessions: SessionCount) {
        self.tokens = tokens
        self.sessions = sessions
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            handle(head, context: context)
        case .body:
            break
        case .end:
            if refused { return }
            if let accepted { switchProtocols(context, headers: accepted.headers, to: accepted.handlers) }
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = head.uri.split(separator: "?").first?.split(separator: "/").map(String.init) ?? []
        let query = head.uri.firstIndex(of: "?").map { String(head.uri[head.uri.index(after: $0)...]) } ?? ""
        guard head.method == .GET || head.method == .POST else {
            return refuse(context, .methodNotAllowed, "use GET or POST")
        }
        guard parts.count == 2, StreamingRequest.paths.contains(parts[0]) else { return refuse(context, .notFound, "no such URL") }
        let upgrade = head.headers["upgrade"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if upgrade.contains("websocket") {
            return handleWebSocket(head, path: parts[0], token: parts[1], query: query, context: context)
        }
        guard upgrade.contains("spdy/3.1") else {
            return refuse(context, .badRequest, "expected Upgrade: SPDY/3.1 (or websocket)")
        }
        let offered = head.headers["x-stream-protocol-version"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !offered.isEmpty else { return refuse(context, .badRequest, "no X-Stream-Protocol-Version") }
        guard admit(context) else { return }
        // Spent here, whatever happens next: a token is good for one connection attempt.
        guard let request = tokens.take(parts[1]), request.path == parts[0] else {
            return refuse(context, .notFound, "unknown or expired token")
        }
        guard let version = offered.first(where: request.protocols.contains) else {
            var headers = HTTPHeaders()
            for supported in request.protocols { headers.add(name: "X-Accepted-Stream-Protocol-Versions", value: supported) }
            return refuse(context, .forbidden, "none of \(offered.joined(separator: ", ")) is served", headers: headers)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Upgrade", value: "SPDY/3.1")
        headers.add(name: "X-Stream-Protocol-Version", value: version)
        switch request {
        case .exec(let exec), .attach(let exec): accepted = (headers, [SPDYExecSession(request: exec)])
        case .portForward(let forward): accepted = (headers, [SPDYPortForwardSession(request: forward)])
        }
    }

    /// Counts the connection as a session (until it closes), or refuses it (503) when there are
    /// as many as allowed already.
    private func admit(_ context: ChannelHandlerContext) -> Bool {
        guard sessions.enter() else {
            refuse(context, .serviceUnavailable, "\(sessions.maximum) streaming sessions are running already")
            return false
        }
        let sessions = self.sessions
        context.channel.closeFuture.whenComplete { _ in sessions.leave() }
        return true
    }

    /// The WebSocket handshake (RFC 6455): a GET with a key, version 13 and one of the session's
    /// subprotocols offered (``WebSocketExecSession/protocols`` for exec and attach,
    /// ``WebSocketPortForwardSession/protocols`` for a port forward, whose ports come in the
    /// query: a bad or missing one is a 400 before the token is spent, as a bad header is).
    private func handleWebSocket(_ head: HTTPRequestHead, path: String, token: String, query: String, context: ChannelHandlerContext) {
        guard head.method == .GET else { return refuse(context, .methodNotAllowed, "a WebSocket upgrade is a GET") }
        guard let key = head.headers["sec-websocket-key"].first, !key.isEmpty,
              head.headers["sec-websocket-version"].first == "13" else {
            return refuse(context, .badRequest, "a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
        }
        let offered = head.headers["sec-websocket-protocol"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var ports: [Int] = []
        // Only a client of the channel protocols sends its ports in the query; any other (client-go's
        // `SPDY/3.1+portforward.k8s.io` tunnel, as crictl -r websocket offers it) learns below that
        // its protocol is not served.
        if path == "portforward" && offered.contains(where: WebSocketPortForwardSession.protocols.contains) {
            do {
                ports = try WebSocketPortForwardSession.ports(query: query)
            } catch {
                return refuse(context, .badRequest, "\(error)")
            }
        }
        guard admit(context) else { return }
        guard let request = tokens.take(token), request.path == path else {
            return refuse(context, .notFound, "unknown or expired token")
        }
        let served = if case .portForward = request { WebSocketPortForwardSession.protocols } else { WebSocketExecSession.protocols }
        guard let version = offered.first(where: served.contains) else {
            return refuse(context, .forbidden, "none of the subprotocols \(offered.joined(separator: ", ")) is served "
                + "(\(served.joined(separator: ", ")) are)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Sec-WebSocket-Accept", value: WebSocketExecSession.accept(key: key))
        headers.add(name: "Sec-WebSocket-Protocol", value: version)
        let session: any ChannelHandler = switch request {
        case .exec(let exec), .attach(let exec): WebSocketExecSession(request: exec, version: version)
        case .portForward(let forward): WebSocketPortForwardSession(request: forward, ports: ports, version: version)
        }
        accepted = (headers, [
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)),
            WebSocketFrameEncoder(),
            session,
        ])
    }

    private func refuse(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) {
        refused = true
        var headers = headers
        let body = message + "\n"
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.utf8.count)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Answers 101 and hands the connection to `handlers`. The order matters: the HTTP encoder
    /// goes first (nothing a session writes may reach it), the session's handlers are added, the
    /// idle timeout becomes the session's, then this handler goes and the HTTP decoder last (bytes
    /// it still holds then reach the session).
    private func switchProtocols(_ context: ChannelHandlerContext, headers: HTTPHeaders, to handlers: [any ChannelHandler]) {
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        let pipeline = context.pipeline.syncOperations
        do {
            pipeline.removeHandler(try pipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
            try pipeline.addHandlers(handlers, position: .last)
            let idle = try pipeline.handler(type: IdleStateHandler.self)
            try pipeline.addHandler(IdleStateHandler(allTimeout: sessions.idleTimeout), position: .after(idle))
            pipeline.removeHandler(idle, promise: nil)
            pipeline.removeHandler(context: context, promise: nil)
            pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self), promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}

/// Counts live sessions against the maximum.
final class SessionCount: Sendable {
    let maximum: Int
    let idleTimeout: TimeAmount
    private let count = Mutex(0)

    init(maximum: Int, idleTimeout: TimeAmount) {
        self.maximum = maximum
        self.idleTimeout = idleTimeout
    }

    var current: Int { count.withLock { $0 } }

    func enter() -> Bool {
        count.withLock { count in
            guard count < maximum else { return false }
            count += 1
            return true
        }
    }

    func leave() {
        count.withLock { $0 -= 1 }
    }
}

/// Closes a connection on IdleStateHandler's event.
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
