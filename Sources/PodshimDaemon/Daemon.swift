import Dispatch
import Foundation
import Glibc
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOPosix
import PodshimCgroups
import PodshimRuntime
import PodshimSystem
import PodshimStreaming
import PodshimImages
import PodshimRegistry

/// `podshim serve`: the CRI runtime and image services on a guarded Unix socket.
///
/// Stopping the daemon (SIGTERM, SIGINT) stops serving and leaves every pod running: a daemon
/// started again with the same state directory re-adopts them.
public struct Daemon {
    /// How the daemon is started.
    public struct Options: Sendable {
        public var socketPath: String
        /// `--socket-group`: a group name or gid whose members may connect; nil = root only.
        public var socketGroup: String?
        public var configuration: RuntimeConfiguration
        public var version: String
        /// The streaming server (Exec, PortForward): address, port, idle timeout.
        public var streaming: StreamingServer.Options
        /// Mirrors, CAs, insecure registries, the pull progress timeout (`--registry-config`).
        public var registry = RegistryConfiguration()

        public init(socketPath: String, socketGroup: String?, configuration: RuntimeConfiguration, version: String,
                    streaming: StreamingServer.Options = StreamingServer.Options()) {
            self.socketPath = socketPath
            self.socketGroup = socketGroup
            self.configuration = configuration
            self.version = version
            self.streaming = streaming
        }
    }

    public let options: Options

    /// Concurrent RPCs per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    static let maxConcurrentStreams = 256

    /// How long in-flight RPCs may run after SIGTERM before the daemon exits anyway.
    static let shutdownGraceSeconds = 3.0

    public init(options: Options) {
        self.options = options
    }

    /// Runs until SIGTERM or SIGINT. Throws when it cannot start.
    public func run() async throws {
        var logger = Logger(label: "podshim.serve")
        logger.logLevel = .info
        let configuration = options.configuration
        guard access(configuration.pauseBinary, X_OK) == 0 else {
            throw PodshimError(.failedPrecondition, subject: "--pause-binary", message: "\(configuration.pauseBinary) is not an executable (build it with hack/build-pause.sh)")
        }
        let hierarchy = CgroupHierarchy.detect()
        if configuration.requireCgroups && hierarchy?.canEnforceLimits != true {
            throw PodshimError(.failedPrecondition, subject: "--require-cgroups", message: "this host has no cgroup v2 hierarchy that can enforce cpu, memory and pids limits")
        }
        if hierarchy?.canEnforceLimits != true {
            logger.warning("cgroup v2 cannot enforce limits on this host: pods run without cpu/memory/pids limits")
        }

        let group: gid_t?
        do {
            group = try options.socketGroup.map(DaemonSocket.group(named:))
        } catch {
            throw PodshimError.from(error)
        }
        var socket = DaemonSocket(path: options.socketPath, group: group)
        do {
            try FileSystem.createDirectory(configuration.stateDirectory, mode: 0o711)
            try FileSystem.createDirectory(configuration.rootDirectory, mode: 0o711)
            try FileSystem.createDirectory(configuration.imageDirectory, mode: 0o755)
            try socket.bindAndListen()
        } catch {
            throw PodshimError.from(error)
        }

        let manager = SandboxManager(configuration: configuration, hierarchy: hierarchy, logger: logger)
        do {
            try manager.store.prepare()
        } catch {
            socket.remove()
            throw PodError("state directory \(manager.store.directory)", error).podshimError
        }
        for line in manager.readopt() { logger.notice("\(line)") }
        let manifestPods = ManifestPods(configuration: configuration, logger: logger)
        for line in manifestPods.readopt() { logger.notice("\(line)") }
        for line in manager.collectNetworkGarbage() { logger.notice("\(line)") }
        if let notice = manager.cgroupNotice { logger.warning("\(notice)") }
        if let notice = manager.pidsLimitNotice { logger.warning("\(notice)") }

        // Only this daemon pulls into its store while it runs: what an interrupted pull left goes now.
        do {
            for path in try manager.images.removeLeftovers() { logger.notice("removed \(path), left by an interrupted pull or removal") }
        } catch {
            logger.warning("image store: \(error)")
        }
        manager.reconcileLayerLeases()
        let puller = ImagePuller(store: manager.images, configuration: options.registry)

        let streaming: StreamingServer?
        do {
            streaming = try StreamingServer(options: options.streaming)
            logger.notice("streaming server (exec, port-forward) on \(streaming?.baseURL ?? "")")
        } catch {
            streaming = nil
            logger.error("the streaming server could not start: \(error); Exec and PortForward answer UNAVAILABLE")
        }
        let policy = PeerPolicy(group: group)
        var transportConfig = HTTP2ServerTransport.Posix.Config.defaults
        // CRI requests are small; RequestSizeLimit refuses those over 2 MiB with RESOURCE_EXHAUSTED,
        // and the transport resets a stream whose message exceeds 4 MiB before buffering more.
        transportConfig.rpc.maxRequestPayloadSize = RequestSizeLimit.hardLimit
        // Advertised in SETTINGS, so a client queues its RPCs beyond it instead of having its
        // connection torn down; it also bounds what half-open streams of one connection can cost.
        transportConfig.http2.maxConcurrentStreams = Self.maxConcurrentStreams
        // A connection nobody uses is closed (gracefully, GOAWAY); a client that vanished without
        // closing is found by keepalive pings and its connection dropped.
        transportConfig.connection.maxIdleTime = .seconds(5 * 60)
        transportConfig.connection.keepalive.time = .seconds(60)
        transportConfig.connection.keepalive.timeout = .seconds(20)
        transportConfig.channelDebuggingCallbacks.onAcceptTCPConnection = { [logger] channel in
            policy.check(channel) { logger.warning("\($0)") }
        }
        // One event loop for the CRI connections, which also runs the handlers (see serve below).
        let rpcLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let transport = HTTP2ServerTransport.Posix(
            listeningSocketDescriptor: Int(socket.descriptor), transportSecurity: .plaintext, config: transportConfig,
            eventLoopGroup: rpcLoop)
        // Each RPC's deadline on DeadlineTimer rather than grpc-swift's Task.sleep, whose task
        // stays allocated until the deadline even when the RPC ended long before (RequestDeadline).
        let server = GRPCServer(transport: DeadlineTransport(wrapping: transport), services: [
            RuntimeServiceProvider(manager: manager, version: options.version, streaming: streaming),
            ImageServiceProvider(store: manager.images, puller: puller, manager: manager,
                                 containerRoot: configuration.rootDirectory + "/pods"),
            PodServiceProvider(pods: manifestPods),
        ], interceptors: [RequestSizeLimit()])

        let socketPath = options.socketPath
        let stopSignals = [SIGTERM, SIGINT].map { signo -> DispatchSourceSignal in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { [logger] in
                logger.notice("signal \(signo): stopping the daemon; pods keep running")
                SystemdNotify.notify(SystemdNotify.stoppingMessage(status: "stopping; pods keep running"), logger: logger)
                manager.events.finishAll()
                manifestPods.events.finishAll()
                server.beginGracefulShutdown()
                // In-flight RPCs get a moment; then the daemon goes whatever still runs (a long
                // ExecSync, a pull): pods keep running, and the next daemon picks up from the
                // records, exactly as after a crash.
                DispatchQueue.global().asyncAfter(deadline: .now() + Self.shutdownGraceSeconds) { [logger] in
                    logger.notice("RPCs still in flight \(Self.shutdownGraceSeconds) s after the signal: exiting now; pods keep running")
                    unlink(socketPath) // as socket.remove() does on a clean stop; the lock file goes with the process
                    exit(0)
                }
            }
            source.resume()
            return source
        }
        defer { for source in stopSignals { source.cancel() } }
        signal(SIGPIPE, SIG_IGN)

        logger.notice("podshim \(options.version) serving CRI runtime.v1 on \(options.socketPath) (pid \(getpid()), \(manager.allSandboxes.count) sandboxes)")
        SystemdNotify.notify(SystemdNotify.readyMessage(
            status: "serving CRI on \(options.socketPath), \(manager.allSandboxes.count) sandboxes"), logger: logger)
        do {
            // The handlers run on the transport's own loop thread: a read-only RPC is served without
            // a thread hop (its state is read under short locks); lifecycle RPCs offload their
            // blocking work to Dispatch and come back here to reply.
            try await withTaskExecutorPreference(EventLoopTaskExecutor(rpcLoop.next())) {
                try await server.serve()
            }
        } catch {
            socket.remove()
            await puller.shutdown()
            throw PodError("serve", error).podshimError
        }
        await puller.shutdown()
        // Manifest pods were asked to stop with the signal; let them finish their termination.
        for entry in manifestPods.all {
            _ = await entry.done.wait(seconds: Double(min(entry.spec.terminationGracePeriodSeconds, 3600)) + 15)
        }
        socket.remove()
        logger.notice("stopped")
    }
}
