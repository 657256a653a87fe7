import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import NIOPosix
import PodshimCRI

/// One connection (one HTTP/2 channel) to a CRI runtime, as kubelet keeps one: both services and
/// the options every call uses.
struct BenchSession: Sendable {
    typealias Transport = HTTP2ClientTransport.Posix

    let runtime: Runtime_V1_RuntimeService.Client<Transport>
    let images: Runtime_V1_ImageService.Client<Transport>
    /// The per-RPC deadline; fail fast when nobody listens.
    let options: CallOptions

    /// Connects to the unix socket `path`, runs `body`, and closes the connection.
    ///
    /// The connection's I/O and every task of the run (the client's and `body`'s, which are
    /// structured under it) share one event-loop thread: a call then costs no hop between the
    /// cooperative pool and the I/O thread, which would add a few hundred µs to each measured
    /// round trip on a small host.
    static func with<Result: Sendable>(
        socket path: String, timeout: Duration, _ body: (BenchSession) async throws -> Result
    ) async throws -> Result {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw BenchError.setup("not a unix socket")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let executor = EventLoopTaskExecutor(group.next())
        let outcome: Swift.Result<Result, any Error>
        do {
            let transport = try HTTP2ClientTransport.Posix(
                target: .unixDomainSocket(path: path), transportSecurity: .plaintext, eventLoopGroup: group)
            let value = try await withTaskExecutorPreference(executor) {
                try await withGRPCClient(transport: transport) { client in
                    var options = CallOptions.defaults
                    options.timeout = timeout
                    options.waitForReady = false
                    let session = BenchSession(
                        runtime: Runtime_V1_RuntimeService.Client(wrapping: client),
                        images: Runtime_V1_ImageService.Client(wrapping: client),
                        options: options)
                    return try await body(session)
                }
            }
            outcome = .success(value)
        } catch {
            outcome = .failure(error)
        }
        try? await group.shutdownGracefully()
        return try outcome.get()
    }

    /// Runs one RPC; a gRPC failure becomes `BenchError.rpc` naming `rpc`.
    @inline(__always)
    func call<R>(_ rpc: String, _ body: () async throws -> R) async throws -> R {
        do {
            return try await body()
        } catch let error as RPCError {
            throw BenchError.rpc(rpc, error.code, error.message)
        }
    }

    /// Runs one RPC and records its latency in `book` under `rpc`.
    @inline(__always)
    func timed<R>(_ rpc: String, _ book: inout LatencyBook, _ body: () async throws -> R) async throws -> R {
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

/// Runs tasks on one NIO event loop (the connection's), so that an RPC's completion resumes
/// its caller on the thread that read the response.
final class EventLoopTaskExecutor: TaskExecutor {
    private let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
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

    init(namespace: String, image: String, hostNetwork: Bool, runID: String = String(UUID().uuidString.prefix(8)).lowercased()) {
        self.namespace = namespace
        self.image = image
        self.hostNetwork = hostNetwork
        self.runID = runID
    }

    /// A pod named `bench-<role>-<run>` with a fresh uid; host network unless told otherwise, a
    /// pid namespace per container, the pod's IPC namespace.
    func pod(_ role: String) -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = "bench-\(role)-\(runID)"
        config.metadata.uid = UUID().uuidString.lowercased()
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
