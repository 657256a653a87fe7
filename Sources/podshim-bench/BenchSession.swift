import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import PodshimCRI
import PodshimDaemon  // EventLoopTaskExecutor: the daemon's handlers run the same way
import Synchronization

/// How many RPCs one HTTP/2 connection carries at most before the bench opens a fresh one.
///
/// Why: containerd's gRPC server (grpc-go) sends a BDP-estimation PING with nearly every
/// response. swift-nio-http2 (1.46) lets a peer send at most 200 control frames (PING, SETTINGS,
/// …) in 30 s; past that the client itself sends GOAWAY ENHANCE_YOUR_CALM and every RPC on the
/// connection fails "unavailable: Stream unexpectedly closed". grpc-swift-nio-transport has no
/// setting for that limit, so the bench never puts more than this many calls on one connection —
/// half the limit, whatever the time the calls take. Every runtime gets the same treatment.
let callsPerConnection = 100

/// The calls made on one connection, against ``callsPerConnection``.
struct CallBudget: Equatable, Sendable {
    let limit: Int
    /// Calls started on the current connection (0: none yet, so not established).
    private(set) var used = 0

    init(limit: Int = callsPerConnection) {
        precondition(limit > 0)
        self.limit = limit
    }

    /// The current connection cannot take `calls` more (at most `limit` are asked for: a region
    /// longer than that renews once, before it starts).
    func exhausted(by calls: Int) -> Bool {
        used > 0 && used + Swift.min(Swift.max(calls, 1), limit) > limit
    }

    mutating func spend() { used += 1 }
    mutating func renew() { used = 0 }
}

/// Opens connections to one CRI runtime's unix socket. Every connection's I/O and every task of
/// the run (structured under ``with(socket:timeout:_:)``) share one event-loop thread: a call then
/// costs no hop between the cooperative pool and the I/O thread, which would add a few hundred µs
/// to each measured round trip on a small host.
final class Connector: Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    let path: String
    /// The per-RPC deadline; fail fast when nobody listens.
    let options: CallOptions
    private let group: MultiThreadedEventLoopGroup
    private let executor: EventLoopTaskExecutor
    /// Connections opened and not yet closed, closed at the end whatever happened.
    private let live = Mutex<[ObjectIdentifier: Connection]>([:])
    /// Connections opened in all.
    private let opened = Atomic<Int>(0)

    private init(path: String, options: CallOptions, group: MultiThreadedEventLoopGroup, executor: EventLoopTaskExecutor) {
        self.path = path
        self.options = options
        self.group = group
        self.executor = executor
    }

    /// Runs `body` with a connector to the unix socket `path`, then closes every connection it
    /// opened and the event loop.
    static func with<Result: Sendable>(
        socket path: String, timeout: Duration, _ body: (Connector) async throws -> Result
    ) async throws -> Result {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw BenchError.setup("not a unix socket")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        var options = CallOptions.defaults
        options.timeout = timeout
        options.waitForReady = false
        let connector = Connector(path: path, options: options, group: group, executor: executor)
        let outcome: Swift.Result<Result, any Error>
        do {
            outcome = .success(try await withTaskExecutorPreference(executor) { try await body(connector) })
        } catch {
            outcome = .failure(error)
        }
        await withTaskExecutorPreference(executor) { await connector.closeAll() }
        try? await group.shutdownGracefully()
        return try outcome.get()
    }

    /// A session for one task (it connects on its first call).
    func session() -> BenchSession { BenchSession(self) }

    /// Connections opened so far.
    var connectionsOpened: Int { opened.load(ordering: .relaxed) }

    fileprivate func connect() throws -> Connection {
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: path), transportSecurity: .plaintext, eventLoopGroup: group)
        let connection = Connection(transport: transport, executor: executor)
        live.withLock { $0[ObjectIdentifier(connection)] = connection }
        opened.add(1, ordering: .relaxed)
        return connection
    }

    fileprivate func close(_ connection: Connection) async {
        live.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(connection)) }
        await connection.close()
    }

    private func closeAll() async {
        let all = live.withLock { live in
            defer { live.removeAll() }
            return Array(live.values)
        }
        for connection in all { await connection.close() }
    }
}

/// One HTTP/2 connection: a gRPC client whose connections run in a task of their own.
final class Connection: Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    let runtime: Runtime_V1_RuntimeService.Client<Transport>
    let images: Runtime_V1_ImageService.Client<Transport>
    private let client: GRPCClient<Transport>
    private let running: Task<Void, Never>

    fileprivate init(transport: Transport, executor: EventLoopTaskExecutor) {
        let client = GRPCClient(transport: transport)
        self.client = client
        runtime = Runtime_V1_RuntimeService.Client(wrapping: client)
        images = Runtime_V1_ImageService.Client(wrapping: client)
        running = Task(executorPreference: executor) { try? await client.runConnections() }
    }

    /// Lets calls in flight finish (there are none: a session closes its connection between
    /// calls), then closes it.
    fileprivate func close() async {
        client.beginGracefulShutdown()
        await running.value
    }
}

/// One task's line to the runtime: both services over a connection that is replaced by a fresh
/// one after ``callsPerConnection`` calls (see there why), never inside a timed call.
///
/// Not shared: one task at a time makes calls on a session (the rpc benchmark's one task, or one
/// worker of a pool), hence `@unchecked Sendable` for handing it to that task.
final class BenchSession: @unchecked Sendable {
    private let connector: Connector
    private var connection: Connection?
    private var budget = CallBudget()
    /// Connections this session opened.
    private(set) var connectionsOpened = 0

    fileprivate init(_ connector: Connector) { self.connector = connector }

    var options: CallOptions { connector.options }
    var runtime: Runtime_V1_RuntimeService.Client<Connector.Transport> { current.runtime }
    var images: Runtime_V1_ImageService.Client<Connector.Transport> { current.images }

    private var current: Connection {
        // `call` opens the connection before it runs a body; these are read only in one.
        guard let connection else { preconditionFailure("BenchSession: RPC outside call(_:_:)") }
        return connection
    }

    /// Whether ``prepare(_:)`` has work to do before `calls` calls: a fresh connection (the
    /// budget is spent) or its first call (not established yet).
    func needsPreparation(for calls: Int = 1) -> Bool {
        connection == nil || budget.used == 0 || budget.exhausted(by: calls)
    }

    /// Makes sure the next `calls` calls (a timed region) go over an established connection that
    /// can take them all: if not, a fresh connection and one untimed Version on it.
    func prepare(_ calls: Int = 1) async throws {
        guard needsPreparation(for: calls) else { return }
        if budget.exhausted(by: calls) { await renew() }
        _ = try await call("Version") { try await runtime.version(Runtime_V1_VersionRequest(), options: options) }
    }

    /// Closes the connection (a session made for a worker, when the worker is done).
    func close() async {
        if let connection {
            self.connection = nil
            await connector.close(connection)
        }
        budget.renew()
    }

    private func renew() async {
        await close()
    }

    /// Runs one RPC (untimed: it may renew the connection first); a gRPC failure becomes
    /// `BenchError.rpc` naming `rpc`.
    @inline(__always)
    func call<R>(_ rpc: String, _ body: () async throws -> R) async throws -> R {
        if budget.exhausted(by: 1) { await renew() }
        if connection == nil {
            do { connection = try connector.connect() } catch { throw BenchError.setup("cannot connect: \(error)") }
            connectionsOpened += 1
        }
        budget.spend()
        do {
            return try await body()
        } catch let error as RPCError {
            throw BenchError.rpc(rpc, error.code, error.message)
        }
    }

    /// Runs one RPC on an established connection and records its latency in `book` under `rpc`.
    @inline(__always)
    func timed<R>(_ rpc: String, _ book: inout LatencyBook, _ body: () async throws -> R) async throws -> R {
        try await prepare(1)
        let start = monotonicNanoseconds()
        let result = try await call(rpc, body)
        book.record(rpc, since: start)
        return result
    }

    // MARK: The lifecycle RPCs, by id

    func runPod(_ config: Runtime_V1_PodSandboxConfig, _ book: inout LatencyBook) async throws -> String {
        var request = Runtime_V1_RunPodSandboxRequest()
        request.config = config
        return try await timed("RunPodSandbox", &book) { try await runtime.runPodSandbox(request, options: options) }.podSandboxID
    }

    func createContainer(
        pod: String, _ podConfig: Runtime_V1_PodSandboxConfig, _ config: Runtime_V1_ContainerConfig, _ book: inout LatencyBook
    ) async throws -> String {
        var request = Runtime_V1_CreateContainerRequest()
        request.podSandboxID = pod
        request.config = config
        request.sandboxConfig = podConfig
        return try await timed("CreateContainer", &book) { try await runtime.createContainer(request, options: options) }.containerID
    }

    func startContainer(_ id: String, _ book: inout LatencyBook) async throws {
        var request = Runtime_V1_StartContainerRequest()
        request.containerID = id
        _ = try await timed("StartContainer", &book) { try await runtime.startContainer(request, options: options) }
    }

    func stopContainer(_ id: String, _ book: inout LatencyBook) async throws {
        var request = Runtime_V1_StopContainerRequest()
        request.containerID = id
        request.timeout = 0
        _ = try await timed("StopContainer", &book) { try await runtime.stopContainer(request, options: options) }
    }

    func removeContainer(_ id: String, _ book: inout LatencyBook) async throws {
        var request = Runtime_V1_RemoveContainerRequest()
        request.containerID = id
        _ = try await timed("RemoveContainer", &book) { try await runtime.removeContainer(request, options: options) }
    }

    func stopPod(_ id: String, _ book: inout LatencyBook) async throws {
        var request = Runtime_V1_StopPodSandboxRequest()
        request.podSandboxID = id
        _ = try await timed("StopPodSandbox", &book) { try await runtime.stopPodSandbox(request, options: options) }
    }

    func removePod(_ id: String, _ book: inout LatencyBook) async throws {
        var request = Runtime_V1_RemovePodSandboxRequest()
        request.podSandboxID = id
        _ = try await timed("RemovePodSandbox", &book) { try await runtime.removePodSandbox(request, options: options) }
    }

    /// Fails with a hint when the runtime does not have `image` (the bench never pulls).
    func requireImage(_ image: String) async throws {
        var request = Runtime_V1_ImageStatusRequest()
        request.image.image = image
        let status = try await call("ImageStatus") { try await images.imageStatus(request, options: options) }
        guard status.hasImage else {
            throw BenchError.setup("the runtime has no image \"\(image)\": pull or import it first")
        }
    }
}

/// Why a run stopped.
enum BenchError: Error, CustomStringConvertible {
    /// An RPC failed: its name, the gRPC status, the message.
    case rpc(String, RPCError.Code, String)
    case setup(String)
    /// SIGINT or SIGTERM.
    case interrupted(Int32)

    var description: String {
        switch self {
        case .rpc(let rpc, let code, let message): "\(rpc) failed: \(code)\(message.isEmpty ? "" : ": \(message)")"
        case .setup(let message): message
        case .interrupted(let signal): "interrupted by signal \(signal)"
        }
    }

    var isUnimplemented: Bool {
        if case .rpc(_, .unimplemented, _) = self { return true }
        return false
    }

    var isNotFound: Bool {
        if case .rpc(_, .notFound, _) = self { return true }
        return false
    }
}

/// What every pod and container of a run looks like: standard CRI fields only, so the same
/// request works on podshim and on containerd.
struct BenchSpec: Sendable {
    let namespace: String
    let image: String
    let hostNetwork: Bool
    /// Unique per run; the pod and container label `podshim-bench.run` carries it, so teardown
    /// finds whatever the run made, even a pod whose RunPodSandbox was cut short.
    let runID: String

    static let runLabel = "podshim-bench.run"

    /// A run id: lowercase letters, digits and dashes, as it names pods and a cgroup directory.
    static func validRunID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 32 && id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
    }

    static func randomRunID() -> String { String(UUID().uuidString.prefix(8)).lowercased() }

    init(namespace: String, image: String, hostNetwork: Bool, runID: String = BenchSpec.randomRunID()) {
        self.namespace = namespace
        self.image = image
        self.hostNetwork = hostNetwork
        self.runID = runID
    }

    /// The top cgroup (cgroupfs form, below each hierarchy's root) of every pod's `cgroup_parent`.
    var cgroupTop: String { "/podshim-bench-\(runID)" }

    /// A pod named `bench-<role>-<run>` with a fresh uid; host network unless told otherwise, a
    /// pid namespace per container, the pod's IPC namespace; `cgroup_parent`
    /// `/podshim-bench-<run>/pod<uid>`, as the kubelet with the cgroupfs driver gives one
    /// (containerd 1.6 fails ListPodSandboxStats "cgroupPath is empty" for a pod without); the
    /// teardown removes those directories (``CgroupTops``).
    func pod(_ role: String) -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        let uid = UUID().uuidString.lowercased()
        config.metadata.name = "bench-\(role)-\(runID)"
        config.metadata.uid = uid
        config.linux.cgroupParent = "\(cgroupTop)/pod\(uid)"
        config.metadata.namespace = namespace
        config.metadata.attempt = 0
        config.logDirectory = ""
        config.labels = [Self.runLabel: runID]
        var namespaces = Runtime_V1_NamespaceOption()
        namespaces.network = hostNetwork ? .node : .pod
        namespaces.pid = .container
        namespaces.ipc = .pod
        config.linux.securityContext.namespaceOptions = namespaces
        return config
    }

    /// `sleep 3600` in the image, default Linux settings.
    func container(_ name: String) -> Runtime_V1_ContainerConfig {
        var config = Runtime_V1_ContainerConfig()
        config.metadata.name = name
        config.metadata.attempt = 0
        config.image.image = image
        config.command = ["sleep", "3600"]
        config.labels = [Self.runLabel: runID]
        config.linux = Runtime_V1_LinuxContainerConfig()
        return config
    }
}
