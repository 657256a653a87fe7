import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import PodshimCRI
import PodshimSPDY
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `podshim ctl port-forward POD [LOCAL:]REMOTE...`: PortForward, and a local listener per port
/// whose connections are forwarded over the one streaming session (``CtlPortForwarder``).
struct CtlPortForward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "port-forward",
        abstract: "Forward local ports to ports in a pod's network namespace, until interrupted.",
        discussion: """
            Each [LOCAL:]REMOTE listens on 127.0.0.1:LOCAL and forwards every connection made there to REMOTE on the pod's localhost. LOCAL may be left out (the same number as REMOTE) or be 0 or empty (`:REMOTE`, any free port); the ports chosen are printed as `Forwarding from 127.0.0.1:LOCAL -> REMOTE`.

            One session with the daemon's streaming server carries every connection (SPDY/3.1 with portforward.k8s.io, as kubectl's port-forward). A connection the pod refuses is closed and the reason printed on stderr. SIGINT or SIGTERM ends forwarding (status 0); losing the session ends it with status 1.
            """
    )

    @OptionGroup var connection: CtlSocketOptions

    @Argument(help: ArgumentHelp("The pod's id or a unique prefix of it.", valueName: "pod-id"))
    var id: String

    @Argument(help: ArgumentHelp("The ports to forward.", valueName: "[local:]remote"))
    var ports: [String] = []

    func validate() throws {
        if ports.isEmpty { throw ValidationError("give at least one [local:]remote port after the pod id") }
        do {
            _ = try CtlPortSpec.parse(ports)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let socket = connection.socket
        try await CtlReport.run("port-forward", socket: socket) {
            let specs = try CtlPortSpec.parse(ports)
            let url = try await CtlSession.with(socket: socket, deadline: .seconds(10)) { session in
                var request = Runtime_V1_PortForwardRequest()
                request.podSandboxID = try await session.resolvePod(id)
                request.port = specs.map { Int32($0.remote) }
                return try await session.runtime.portForward(request, options: session.options).url
            }
            try await CtlPortForwarder.run(url: url, ports: specs)
        }
    }
}

/// One `[LOCAL:]REMOTE`.
struct CtlPortSpec: Sendable, Equatable {
    /// 0: any free port.
    var local: Int
    var remote: Int

    init(_ text: String) throws(CtlError) {
        func number(_ part: Substring, zero: Bool) throws(CtlError) -> Int {
            guard let value = Int(part), ((zero ? 0 : 1)...65535).contains(value) else {
                throw CtlError.usage("\"\(part)\" in \"\(text)\" is not a port number" + (zero ? " (0 to 65535)" : " (1 to 65535)"))
            }
            return value
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            remote = try number(parts[0], zero: false)
            local = remote
        case 2:
            remote = try number(parts[1], zero: false)
            local = parts[0].isEmpty ? 0 : try number(parts[0], zero: true)
        default:
            throw CtlError.usage("\"\(text)\" is not [local:]remote")
        }
    }

    /// Every argument; a local port (other than 0) given twice is an error.
    static func parse(_ texts: [String]) throws(CtlError) -> [CtlPortSpec] {
        var specs: [CtlPortSpec] = []
        for text in texts {
            let spec = try CtlPortSpec(text)
            if spec.local != 0, specs.contains(where: { $0.local == spec.local }) {
                throw CtlError.usage("local port \(spec.local) is given twice")
            }
            specs.append(spec)
        }
        return specs
    }
}

/// Port forwarding over one SPDY/3.1 session (`portforward.k8s.io`), as kubectl does it: for each
/// accepted local connection a pair of streams with the same `port` and `requestid` (increasing
/// from 0), `error` then `data`, each waited for. The error stream is read only (we FIN it at once)
/// and what the server writes there is printed for that connection. Our connection's end FINs the
/// data stream; the pod's FIN (after what it sent was written) shuts our connection's output and
/// ends the pair, as a reset does at once.
///
/// Back-pressure: a local connection is read only as fast as the session takes it (the writer
/// suspends); the session's frames are read only as fast as the local connection they are for
/// takes them. SPDY here has no per-stream flow control (the server, like spdystream, sends no
/// WINDOW_UPDATE), so a local client that stops reading holds up the other connections too, as it
/// does with kubectl.
enum CtlPortForwarder {
    typealias Local = NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// An accepted connection and the future of its output's close (the half-close after the
    /// last write, or the connection's end).
    struct Accepted: Sendable {
        var channel: Local
        var outputClosed: EventLoopFuture<Void>
    }

    struct Listening: Sendable {
        var listener: NIOAsyncChannel<Accepted, Never>
        var port: Int
        var remote: Int
    }

    static func run(url text: String, ports: [CtlPortSpec]) async throws {
        let url = try CtlStreamURL(text)
        try await CtlSignals.with([SIGINT, SIGTERM]) { signals in
            var listening: [Listening] = []
            let session: NIOAsyncChannel<SPDYFrame, SPDYFrame>
            do {
                for spec in ports {
                    let listener: NIOAsyncChannel<Accepted, Never>
                    do {
                        listener = try await listen(on: spec.local)
                    } catch {
                        throw CtlError.failed("cannot listen on 127.0.0.1:\(spec.local): \(CtlStreamClient.reason(error))")
                    }
                    listening.append(Listening(listener: listener, port: listener.channel.localAddress?.port ?? spec.local, remote: spec.remote))
                }
                session = try await CtlStreamClient.connect(to: url, speaking: .portForward)
            } catch {
                for entry in listening { entry.listener.channel.close(promise: nil) }
                throw error
            }
            CtlOutput.lines(listening.map { "Forwarding from 127.0.0.1:\($0.port) -> \($0.remote)" })
            try await session.executeThenClose { inbound, outbound in
                let connection = CtlSPDYConnection(channel: session.channel, outbound: outbound)
                let routes = Routes()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await read(connection, inbound, routes)
                        if !Task.isCancelled { throw CtlError.failed("lost the connection to the streaming server") }
                    }
                    group.addTask { await connection.keepAlive() }
                    group.addTask {
                        for await _ in signals { return }
                    }
                    for entry in listening {
                        group.addTask { try await accept(entry, connection, routes) }
                    }
                    // The first to end (a signal, the session lost, a listener failing) ends all.
                    try await group.next()
                    group.cancelAll()
                }
                await connection.goAway()
            }
        }
    }

    private static func listen(on port: Int) async throws -> NIOAsyncChannel<Accepted, Never> {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let watcher = OutputClosedWatcher(promise: channel.eventLoop.makePromise())
                    try channel.pipeline.syncOperations.addHandler(watcher)
                    let local = try Local(wrappingChannelSynchronously: channel,
                                          configuration: .init(isOutboundHalfClosureEnabled: true))
                    return Accepted(channel: local, outputClosed: watcher.closed)
                }
            }
    }

    private static func accept(_ entry: Listening, _ connection: CtlSPDYConnection, _ routes: Routes) async throws {
        try await entry.listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await accepted in inbound {
                    group.addTask { await forward(accepted, entry, connection, routes) }
                }
            }
        }
    }

    /// One local connection, to its end.
    private static func forward(_ accepted: Accepted, _ entry: Listening, _ connection: CtlSPDYConnection, _ routes: Routes) async {
        var opened: [UInt32] = []
        var pair: Pair?
        do {
            try await accepted.channel.executeThenClose { inbound, outbound in
                let forwarded = Pair(local: accepted.channel.channel, writer: outbound, outputClosed: accepted.outputClosed)
                pair = forwarded
                let requestID = routes.nextRequestID()
                func headers(_ type: String) -> SPDYHeaders {
                    SPDYHeaders([("streamtype", type), ("port", "\(entry.remote)"), ("requestid", "\(requestID)")])
                }
                let errorStream = try await connection.open(headers("error")) { id in
                    routes.add(id, .error(forwarded))
                    opened.append(id)
                }
                let dataStream = try await connection.open(headers("data")) { id in
                    routes.add(id, .data(forwarded))
                    opened.append(id)
                }
                try await connection.send([], on: errorStream, fin: true) // read only, as client-go does
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        for try await buffer in inbound { try await connection.send(buffer, on: dataStream) }
                        try await connection.send([], on: dataStream, fin: true)
                        return false
                    }
                    group.addTask {
                        try await forwarded.ended()
                        return true
                    }
                    // Our side's end only FINs the data stream; the pair lasts until the pod's side ends.
                    while let podSideEnded = try await group.next() {
                        if podSideEnded {
                            group.cancelAll()
                            return
                        }
                    }
                }
            }
        } catch {
            // Our connection failed, or the session did: the pod's side is told to stop.
            if !Task.isCancelled { for id in opened { connection.reset(id) } }
        }
        routes.remove(opened)
        if let text = pair?.errorText {
            CtlOutput.error("podshim ctl port-forward: 127.0.0.1:\(entry.port) -> \(entry.remote): \(text)")
        }
    }

    /// Routes the session's frames to the pairs their streams belong to, until the session ends;
    /// then every pair still open ends.
    private static func read(_ connection: CtlSPDYConnection, _ inbound: NIOAsyncChannelInboundStream<SPDYFrame>, _ routes: Routes) async throws {
        defer { routes.abortAll() }
        try await connection.read(inbound) { frame in
            switch frame {
            case .data(let id, let flags, let payload):
                switch routes[id] {
                case .data(let pair):
                    if !payload.isEmpty, await !pair.deliver(payload) {
                        connection.reset(id) // our connection is gone: the pod's side goes too
                        pair.abort()
                    } else if flags & SPDYFrame.flagFin != 0 {
                        pair.podSideFinished()
                    }
                case .error(let pair):
                    pair.appendError(payload)
                case nil:
                    break
                }
            case .rstStream(let id, _):
                if case .data(let pair) = routes[id] { pair.abort() }
            default:
                break
            }
            return true
        }
    }
}

extension CtlPortForwarder {
    /// The stream ids of the session's pairs, and the request ids handed out.
    final class Routes: Sendable {
        enum Route: Sendable {
            case error(Pair)
            case data(Pair)
        }

        private struct State {
            var routes: [UInt32: Route] = [:]
            var nextRequestID = 0
        }

        private let state = Mutex(State())

        subscript(id: UInt32) -> Route? { state.withLock { $0.routes[id] } }

        func add(_ id: UInt32, _ route: Route) { state.withLock { $0.routes[id] = route } }

        func remove(_ ids: [UInt32]) {
            state.withLock { state in for id in ids { state.routes[id] = nil } }
        }

        func nextRequestID() -> Int {
            state.withLock { state in
                defer { state.nextRequestID += 1 }
                return state.nextRequestID
            }
        }

        /// The session is gone: every pair ends now.
        func abortAll() {
            let routes = state.withLock { $0.routes.values }
            for route in routes {
                if case .data(let pair) = route { pair.abort() }
            }
        }
    }

    /// One forwarded connection's two ends as the session's reader and its own task see them.
    final class Pair: Sendable {
        let local: any Channel
        private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>
        private let outputClosed: EventLoopFuture<Void>
        private let end: EventLoopPromise<Void>
        private let errorBytes = Mutex<[UInt8]>([])

        init(local: any Channel, writer: NIOAsyncChannelOutboundWriter<ByteBuffer>, outputClosed: EventLoopFuture<Void>) {
            self.local = local
            self.writer = writer
            self.outputClosed = outputClosed
            end = local.eventLoop.makePromise()
        }

        /// Writes what the pod sent to our connection (suspending while it takes no more); false
        /// when our connection is gone.
        func deliver(_ payload: [UInt8]) async -> Bool {
            do {
                try await writer.write(local.allocator.buffer(bytes: payload))
                return true
            } catch {
                return false
            }
        }

        /// The pod's side sent its last byte: our connection's output is shut once everything got
        /// there, and the pair ends then.
        func podSideFinished() {
            writer.finish()
            let end = self.end
            outputClosed.whenComplete { _ in end.succeed(()) }
        }

        /// Reset, or the session is gone: our connection closes now.
        func abort() {
            local.close(promise: nil)
            end.succeed(()) // a second end is ignored
        }

        /// Waits for the end (cancelling the wait aborts the pair).
        func ended() async throws {
            try await withTaskCancellationHandler {
                try await end.futureResult.get()
            } onCancel: {
                self.abort()
            }
        }

        func appendError(_ bytes: [UInt8]) {
            errorBytes.withLock { $0 += bytes.prefix(max(0, 4096 - $0.count)) }
        }

        /// What the server said on the error stream, if anything.
        var errorText: String? {
            let text = errorBytes.withLock { String(decoding: $0, as: UTF8.self) }.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? nil : text
        }
    }

    /// Completes its future when the connection's output is closed (or the connection is).
    final class OutputClosedWatcher: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        private let promise: EventLoopPromise<Void>

        init(promise: EventLoopPromise<Void>) {
            self.promise = promise
        }

        var closed: EventLoopFuture<Void> { promise.futureResult }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .outputClosed? = event as? ChannelEvent { promise.succeed(()) }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.succeed(())
            context.fireChannelInactive()
        }
    }
}
