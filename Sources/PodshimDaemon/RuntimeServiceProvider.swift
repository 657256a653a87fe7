import Foundation
import GRPCCore
import PodshimCRI
import PodshimRuntime
import PodshimSystem
import PodshimStreaming

/// `runtime.v1.RuntimeService`: thin request/response mapping over ``SandboxManager``.
struct RuntimeServiceProvider: Runtime_V1_RuntimeService.SimpleServiceProtocol {
    let manager: SandboxManager
    let version: String
    /// Serves the URLs Exec returns (nil: it could not start, and Exec says so).
    let streaming: StreamingServer?

    func version(request: Runtime_V1_VersionRequest, context: ServerContext) async throws -> Runtime_V1_VersionResponse {
        var response = Runtime_V1_VersionResponse()
        response.version = "0.1.0"
        response.runtimeName = "podshim"
        response.runtimeVersion = version
        response.runtimeApiVersion = "v1"
        return response
    }

    func status(request: Runtime_V1_StatusRequest, context: ServerContext) async throws -> Runtime_V1_StatusResponse {
        // Ready only when a pod could start now: the pause binary runs and the directories the
        // daemon writes to are writable.
        let configuration = manager.configuration
        var runtime = Runtime_V1_RuntimeCondition()
        runtime.type = "RuntimeReady"
        runtime.status = true
        if access(configuration.pauseBinary, X_OK) != 0 {
            runtime.status = false
            runtime.reason = "PauseBinaryMissing"
            runtime.message = "pause binary \(configuration.pauseBinary): \(Errno.last)"
        } else if let unwritable = [configuration.stateDirectory, configuration.rootDirectory]
            .first(where: { (path: String) in access(path, W_OK) != 0 }) {
            runtime.status = false
            runtime.reason = "StateNotWritable"
            runtime.message = "\(unwritable): \(Errno.last)"
        }
        let condition = await offload { manager.networkCondition }
        var network = Runtime_V1_RuntimeCondition()
        network.type = "NetworkReady"
        network.status = condition.ready
        network.reason = condition.reason
        network.message = condition.message
        var response = Runtime_V1_StatusResponse()
        response.status.conditions = [runtime, network]
        if let notice = manager.pidsLimitNotice {
            // Not one of the kubelet's required conditions (it ignores others), but there for people.
            var pids = Runtime_V1_RuntimeCondition()
            pids.type = "PodPidsLimitEnforced"
            pids.status = false
            pids.reason = "NoPidsController"
            pids.message = notice
            response.status.conditions.append(pids)
        }
        // One handler, the default (""): recursive read-only mounts yes, user namespaces not yet.
        var handler = Runtime_V1_RuntimeHandler()
        handler.features.recursiveReadOnlyMounts = true
        handler.features.userNamespaces = false
        response.runtimeHandlers = [handler]
        response.features.supplementalGroupsPolicy = true
        if request.verbose {
            response.info["config"] = manager.verboseInfo()
        }
        return response
    }

    // MARK: - Sandboxes

    func runPodSandbox(request: Runtime_V1_RunPodSandboxRequest, context: ServerContext) async throws -> Runtime_V1_RunPodSandboxResponse {
        guard request.hasConfig else { throw CRIError.invalidArgument("config", "required") }
        if !request.runtimeHandler.isEmpty && request.runtimeHandler != "podshim" {
            throw CRIError.invalidArgument("runtime_handler", "unknown handler \"\(request.runtimeHandler)\" (podshim has one, the default)")
        }
        let manager = self.manager
        let config = request.config
        let id = try await offload { try manager.runPodSandbox(config) }
        var response = Runtime_V1_RunPodSandboxResponse()
        response.podSandboxID = id
        return response
    }

    func stopPodSandbox(request: Runtime_V1_StopPodSandboxRequest, context: ServerContext) async throws -> Runtime_V1_StopPodSandboxResponse {
        do throws(PodshimError) {
            let sandbox = try manager.sandbox(request.podSandboxID)
            if let failure = await manager.stopPodSandbox(sandbox) { throw failure }
        } catch let error where error.code == .notFound {
            // Stopping what is gone is done (the kubelet retries after restarts).
        }
        return Runtime_V1_StopPodSandboxResponse()
    }

    func removePodSandbox(request: Runtime_V1_RemovePodSandboxRequest, context: ServerContext) async throws -> Runtime_V1_RemovePodSandboxResponse {
        do {
            let sandbox = try manager.sandbox(request.podSandboxID)
            try await manager.removePodSandbox(sandbox)
        } catch let error where error.code == .notFound {
        }
        return Runtime_V1_RemovePodSandboxResponse()
    }

    func podSandboxStatus(request: Runtime_V1_PodSandboxStatusRequest, context: ServerContext) async throws -> Runtime_V1_PodSandboxStatusResponse {
        let sandbox = try manager.sandbox(request.podSandboxID)
        var response = Runtime_V1_PodSandboxStatusResponse()
        sandbox.lock.withLock {
            response.status = CRIStatus.sandboxStatus(sandbox)
            response.containersStatuses = sandbox.containers.map(CRIStatus.containerStatus)
            if request.verbose {
                response.info["info"] = jsonObject([
                    "pid": sandbox.pod.sandbox?.pid ?? 0,
                    "cgroup": sandbox.pod.cgroups?.sandbox.path ?? "",
                    "stateDirectory": sandbox.pod.layout.stateDirectory,
                    "hostNetwork": sandbox.pod.spec.hostNetwork,
                    "hostPID": sandbox.pod.spec.hostPID,
                    "hostIPC": sandbox.pod.spec.hostIPC,
                ])
            }
        }
        response.timestamp = nowNanoseconds()
        return response
    }

    func listPodSandbox(request: Runtime_V1_ListPodSandboxRequest, context: ServerContext) async throws -> Runtime_V1_ListPodSandboxResponse {
        let filter = request.filter
        var response = Runtime_V1_ListPodSandboxResponse()
        for sandbox in manager.allSandboxes {
            let item = sandbox.lock.withLock { CRIStatus.sandbox(sandbox) }
            if request.hasFilter {
                if !filter.id.isEmpty && !item.id.hasPrefix(filter.id) { continue }
                if filter.hasState && filter.state.state != item.state { continue }
                if !Self.matches(item.labels, filter.labelSelector) { continue }
            }
            response.items.append(item)
        }
        response.items.sort { $0.createdAt < $1.createdAt }
        return response
    }

    /// A JSON object of simple values, for the verbose `info` maps.
    func jsonObject(_ values: [String: Any]) -> String {
        // Cannot fail for the strings, numbers and booleans callers pass; "{}" is only a fallback.
        (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    static func matches(_ labels: [String: String], _ selector: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }

    // MARK: - Containers

    func createContainer(request: Runtime_V1_CreateContainerRequest, context: ServerContext) async throws -> Runtime_V1_CreateContainerResponse {
        let sandbox = try manager.sandbox(request.podSandboxID)
        guard request.hasConfig else { throw CRIError.invalidArgument("config", "required") }
        let manager = self.manager
        let config = request.config
        let id = try await offload { try manager.createContainer(in: sandbox, config: config) }
        var response = Runtime_V1_CreateContainerResponse()
        response.containerID = id
        return response
    }

    func startContainer(request: Runtime_V1_StartContainerRequest, context: ServerContext) async throws -> Runtime_V1_StartContainerResponse {
        let received = MonotonicInstant.now()
        let (sandbox, container) = try manager.container(request.containerID)
        let manager = self.manager
        try await offload { try manager.startContainer(container, in: sandbox, received: received) }
        return Runtime_V1_StartContainerResponse()
    }

    func stopContainer(request: Runtime_V1_StopContainerRequest, context: ServerContext) async throws -> Runtime_V1_StopContainerResponse {
        if request.timeout < 0 { throw CRIError.invalidArgument("timeout", "must not be negative") }
        // Idempotent, as the CRI asks (and critest checks): a container that is not there is stopped.
        do {
            let (sandbox, container) = try manager.container(request.containerID)
            await manager.stop(container, in: sandbox, timeoutSeconds: request.timeout)
        } catch let error where error.code == .notFound {
        }
        return Runtime_V1_StopContainerResponse()
    }

    func removeContainer(request: Runtime_V1_RemoveContainerRequest, context: ServerContext) async throws -> Runtime_V1_RemoveContainerResponse {
        do {
            let (sandbox, container) = try manager.container(request.containerID)
            try await manager.removeContainer(container, in: sandbox)
        } catch let error where error.code == .notFound {
        }
        return Runtime_V1_RemoveContainerResponse()
    }

    func listContainers(request: Runtime_V1_ListContainersRequest, context: ServerContext) async throws -> Runtime_V1_ListContainersResponse {
        let filter = request.filter
        var response = Runtime_V1_ListContainersResponse()
        for sandbox in manager.allSandboxes {
            if request.hasFilter && !filter.podSandboxID.isEmpty && !sandbox.id.hasPrefix(filter.podSandboxID) { continue }
            let items = sandbox.lock.withLock { sandbox.containers.map(CRIStatus.container) }
            for item in items {
                if request.hasFilter {
                    if !filter.id.isEmpty && !item.id.hasPrefix(filter.id) { continue }
                    if filter.hasState && filter.state.state != item.state { continue }
                    if !RuntimeServiceProvider.matches(item.labels, filter.labelSelector) { continue }
                }
                response.containers.append(item)
            }
        }
        response.containers.sort { $0.createdAt < $1.createdAt }
        return response
    }

    func containerStatus(request: Runtime_V1_ContainerStatusRequest, context: ServerContext) async throws -> Runtime_V1_ContainerStatusResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        var response = Runtime_V1_ContainerStatusResponse()
        sandbox.lock.withLock {
            response.status = CRIStatus.containerStatus(container)
            if request.verbose {
                response.info["info"] = jsonObject([
                    "pid": container.runtime.process?.pid ?? 0,
                    "sandboxID": sandbox.id,
                    "cgroup": container.runtime.cgroup?.path ?? "",
                ])
                // The last start's stages (podshim-bench's per-stage percentiles); not in the kubelet's view.
                if let profile = container.startProfile { response.info["startProfile"] = profile.json }
            }
        }
        return response
    }

    func updateContainerResources(request: Runtime_V1_UpdateContainerResourcesRequest, context: ServerContext) async throws -> Runtime_V1_UpdateContainerResourcesResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        guard request.hasLinux else { throw CRIError.invalidArgument("linux", "required") }
        try manager.updateResources(container, in: sandbox, request.linux)
        return Runtime_V1_UpdateContainerResourcesResponse()
    }

    func reopenContainerLog(request: Runtime_V1_ReopenContainerLogRequest, context: ServerContext) async throws -> Runtime_V1_ReopenContainerLogResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        let output = sandbox.lock.withLock { container.record.state == .running ? container.runtime.outputLog : nil }
        guard let output else {
            throw CRIError.failedPrecondition("container \(container.id) is not running")
        }
        do {
            try output.reopenLog()
        } catch {
            throw CRIError.internal("reopen log of \(container.id): \(error)")
        }
        return Runtime_V1_ReopenContainerLogResponse()
    }

    func execSync(request: Runtime_V1_ExecSyncRequest, context: ServerContext) async throws -> Runtime_V1_ExecSyncResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        guard !request.cmd.isEmpty, !request.cmd[0].isEmpty else { throw CRIError.invalidArgument("cmd", "required") }
        if request.timeout < 0 { throw CRIError.invalidArgument("timeout", "must not be negative") }
        let running = sandbox.lock.withLock { container.record.state == .running }
        guard running else { throw CRIError.failedPrecondition("container \(container.id) is not running") }
        let argv = request.cmd
        let timeout = Double(request.timeout)
        let result: ContainerExec.Result
        let cancellation = ExecCancellation()
        do {
            // The RPC's cancellation (the client left, its deadline passed, the server is shutting
            // down: grpc-swift signals these through the context, not the task) kills the command.
            result = try await withRPCCancellationHandler {
                try await withTaskCancellationHandler {
                    try await offload {
                        try ContainerExec.run(in: container.runtime, argv: argv, timeoutSeconds: timeout, cancellation: cancellation)
                    }
                } onCancel: {
                    cancellation.cancel()
                }
            } onCancelRPC: {
                cancellation.cancel()
            }
        } catch {
            throw PodshimError.from(error)
        }
        if result.timedOut {
            throw CRIError.deadlineExceeded("command \(argv[0]) timed out after \(request.timeout)s")
        }
        var response = Runtime_V1_ExecSyncResponse()
        response.stdout = Data(result.stdout)
        response.stderr = Data(result.stderr)
        if result.truncated {
            // The CRI reply has no field for it: say it where a person reads the output.
            response.stderr += Data("\n[podshim: output cut at \(ContainerExec.outputLimit >> 20) MiB per stream]\n".utf8)
        }
        response.exitCode = result.exitCode
        return response
    }

    // MARK: - Stats

    func containerStats(request: Runtime_V1_ContainerStatsRequest, context: ServerContext) async throws -> Runtime_V1_ContainerStatsResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        var response = Runtime_V1_ContainerStatsResponse()
        response.stats = sandbox.lock.withLock { CRIStatus.stats(container, layout: sandbox.pod.layout) }
        CRIStatus.measureWritableLayer(&response.stats)
        return response
    }

    func listContainerStats(request: Runtime_V1_ListContainerStatsRequest, context: ServerContext) async throws -> Runtime_V1_ListContainerStatsResponse {
        let filter = request.filter
        var response = Runtime_V1_ListContainerStatsResponse()
        for sandbox in manager.allSandboxes {
            if request.hasFilter && !filter.podSandboxID.isEmpty && !sandbox.id.hasPrefix(filter.podSandboxID) { continue }
            var stats = sandbox.lock.withLock { () -> [Runtime_V1_ContainerStats] in
                sandbox.containers.filter { container in
                    container.record.state == .running
                        && (!request.hasFilter || filter.id.isEmpty || container.id.hasPrefix(filter.id))
                        && (!request.hasFilter || RuntimeServiceProvider.matches(container.config.labels, filter.labelSelector))
                }.map { CRIStatus.stats($0, layout: sandbox.pod.layout) }
            }
            for index in stats.indices { CRIStatus.measureWritableLayer(&stats[index]) }
            response.stats += stats
        }
        return response
    }

    // MARK: - Events

    func getContainerEvents(
        request: Runtime_V1_GetEventsRequest, response: RPCWriter<Runtime_V1_ContainerEventResponse>, context: ServerContext
    ) async throws {
        for await event in manager.events.subscribe() {
            try await response.write(event)
        }
    }

    // MARK: - Not implemented

    func streamPodSandboxes(request: Runtime_V1_StreamPodSandboxesRequest, response: RPCWriter<Runtime_V1_StreamPodSandboxesResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamPodSandboxes")
    }
    func streamContainers(request: Runtime_V1_StreamContainersRequest, response: RPCWriter<Runtime_V1_StreamContainersResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamContainers")
    }
    /// A URL on the streaming server for this exec: the command starts when the client has
    /// connected and opened its streams (SPDY/3.1, `v4.channel.k8s.io`).
    func exec(request: Runtime_V1_ExecRequest, context: ServerContext) async throws -> Runtime_V1_ExecResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        guard !request.cmd.isEmpty, !request.cmd[0].isEmpty else { throw CRIError.invalidArgument("cmd", "required") }
        if request.tty && request.stderr {
            throw CRIError.invalidArgument("stderr", "must be false with tty (a terminal merges stderr into stdout)")
        }
        guard request.stdin || request.stdout || request.stderr else {
            throw CRIError.invalidArgument("stdin", "one of stdin, stdout and stderr must be true")
        }
        let running = sandbox.lock.withLock { container.record.state == .running }
        guard running else { throw CRIError.failedPrecondition("container \(container.id) is not running") }
        guard let streaming else { throw PodshimError(.unavailable, operation: "Exec", message: "the streaming server is not running") }
        let runtime = container.runtime
        let argv = request.cmd
        let (stdin, stdout, stderr, tty) = (request.stdin, request.stdout, request.stderr, request.tty)
        let exec = ExecStreamRequest(stdin: stdin, stdout: stdout, stderr: stderr, tty: tty) { onExit in
            let started: ContainerExec.Streaming
            do throws(ContainerExec.StartError) {
                started = try ContainerExec.start(in: runtime, argv: argv, stdin: stdin, stdout: stdout, stderr: stderr,
                                                  tty: tty, onExit: onExit)
            } catch {
                // A program that is not there or cannot be executed: the session reports the
                // command's 127/126, as runc's does; anything else is the exec's failure.
                if let code = error.commandExitCode { throw ExecCommandNotRunnable(exitCode: code, message: error.reason) }
                throw error.podshimError
            }
            let process = started.process
            return ExecProcess(stdin: started.stdin, stdout: started.stdout, stderr: started.stderr, terminal: started.terminal,
                               kill: { _ = try? process.send(.kill) }) // gone already: nothing to kill
        }
        guard let url = streaming.url(for: .exec(exec)) else {
            throw PodshimError(.resourceExhausted, operation: "Exec", message: "\(streaming.tokens.capacity) streaming sessions are waiting to be used")
        }
        var response = Runtime_V1_ExecResponse()
        response.url = url
        return response
    }
    /// A URL on the streaming server for attaching to the container's own process (SPDY/3.1
    /// `v4.channel.k8s.io`, or a WebSocket): what it prints from then on (the CRI log keeps getting
    /// it too), and its stdin or terminal when it has one. The session ends with Success when the
    /// container's output ends; a client that leaves leaves the container running.
    func attach(request: Runtime_V1_AttachRequest, context: ServerContext) async throws -> Runtime_V1_AttachResponse {
        let (sandbox, container) = try manager.container(request.containerID)
        guard request.stdin || request.stdout || request.stderr else {
            throw CRIError.invalidArgument("stdin", "one of stdin, stdout and stderr must be true")
        }
        if request.tty && request.stderr {
            throw CRIError.invalidArgument("stderr", "must be false with tty (a terminal merges stderr into stdout)")
        }
        let runtime = container.runtime
        if request.tty != runtime.tty {
            throw CRIError.invalidArgument("tty", "the container was created with tty \(runtime.tty)")
        }
        let running = sandbox.lock.withLock { container.record.state == .running }
        guard running, runtime.outputLog != nil else { throw CRIError.failedPrecondition("container \(container.id) is not running") }
        if request.stdin && runtime.input == nil {
            throw CRIError.failedPrecondition(runtime.stdin || runtime.tty
                ? "the stdin of container \(container.id) was closed after its first attach (stdin_once)"
                : "container \(container.id) was not created with stdin")
        }
        guard let streaming else { throw PodshimError(.unavailable, operation: "Attach", message: "the streaming server is not running") }
        let (stdin, stdout, stderr, tty) = (request.stdin, request.stdout, request.stderr, request.tty)
        let manager = self.manager
        let attach = ExecStreamRequest(stdin: stdin, stdout: stdout, stderr: stderr, tty: tty, attach: true) { onExit in
            try Self.attachStreams(to: container, in: sandbox, manager: manager, stdin: stdin, stdout: stdout, stderr: stderr, onEnd: onExit)
        }
        guard let url = streaming.url(for: .attach(attach)) else {
            throw PodshimError(.resourceExhausted, operation: "Attach", message: "\(streaming.tokens.capacity) streaming sessions are waiting to be used")
        }
        var response = Runtime_V1_AttachResponse()
        response.url = url
        return response
    }

    /// An attach session's ends, once its client is there: copies of the container's stdin (or
    /// terminal) and pipes that get its output from now on.
    private static func attachStreams(
        to container: ManagedContainer, in sandbox: ManagedSandbox, manager: SandboxManager,
        stdin: Bool, stdout: Bool, stderr: Bool, onEnd: @escaping @Sendable (ExitStatus) -> Void
    ) throws(PodshimError) -> ExecProcess {
        let runtime = container.runtime
        guard runtime.isRunning, let output = runtime.outputLog else {
            throw CRIError.failedPrecondition("container \(container.id) is not running")
        }
        var opened: [Int32] = []
        do throws(SystemError) {
            let input = stdin ? try runtime.input?.sessionDescriptor() : nil
            if let input { opened.append(input) }
            if stdin && input == nil {
                throw SystemError("attach", path: "stdin of container \(container.id)", errno: .badFileDescriptor)
            }
            let terminal = runtime.tty ? try runtime.input?.sessionDescriptor() : nil
            if let terminal { opened.append(terminal) }
            let out = stdout ? try output.subscribe(.stdout) : nil
            if let out { opened.append(out) }
            let err = stderr ? try output.subscribe(.stderr) : nil
            output.whenEnded { onEnd(.exited(code: 0)) }
            let closesStdin = stdin && runtime.input?.closesAfterFirstSession == true
            var process = ExecProcess(stdin: input, stdout: out, stderr: err, terminal: terminal,
                                      kill: {}) // an attach never kills the container
            if closesStdin {
                process.stdinEnded = { manager.closeStdin(of: container, in: sandbox) }
            }
            return process
        } catch {
            for fd in opened { close(fd) }
            throw error.podshimError
        }
    }
    /// A URL on the streaming server for forwarding ports of the pod (SPDY/3.1,
    /// `portforward.k8s.io`; the ports come in the stream headers): each connection is made to
    /// localhost in the pod's network namespace, IPv4 then IPv6.
    func portForward(request: Runtime_V1_PortForwardRequest, context: ServerContext) async throws -> Runtime_V1_PortForwardResponse {
        let sandbox = try manager.sandbox(request.podSandboxID)
        for (index, port) in request.port.enumerated() where !(1...65535).contains(port) {
            throw CRIError.invalidArgument("port[\(index)]", "\(port) is not a port number")
        }
        let ready = sandbox.lock.withLock { sandbox.record.ready }
        guard ready, let pause = sandbox.pod.sandbox else {
            throw CRIError.failedPrecondition("pod sandbox \(sandbox.id) is not ready")
        }
        guard let streaming else { throw PodshimError(.unavailable, operation: "PortForward", message: "the streaming server is not running") }
        let forward = PortForwardStreamRequest { port in
            let deadline = MonotonicInstant.now().advanced(bySeconds: 10)
            switch PodNetwork.connect(sandbox: pause, host: "127.0.0.1", port: port, deadline: deadline) {
            case .success(let fd): return fd
            case .failure(let v4):
                switch PodNetwork.connect(sandbox: pause, host: "::1", port: port, deadline: deadline) {
                case .success(let fd): return fd
                case .failure: throw v4
                }
            }
        }
        guard let url = streaming.url(for: .portForward(forward)) else {
            throw PodshimError(.resourceExhausted, operation: "PortForward", message: "\(streaming.tokens.capacity) streaming sessions are waiting to be used")
        }
        var response = Runtime_V1_PortForwardResponse()
        response.url = url
        return response
    }
    func streamContainerStats(request: Runtime_V1_StreamContainerStatsRequest, response: RPCWriter<Runtime_V1_StreamContainerStatsResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamContainerStats")
    }
    func podSandboxStats(request: Runtime_V1_PodSandboxStatsRequest, context: ServerContext) async throws -> Runtime_V1_PodSandboxStatsResponse {
        let sandbox = try manager.sandbox(request.podSandboxID)
        var response = Runtime_V1_PodSandboxStatsResponse()
        response.stats = sandbox.lock.withLock { CRIStatus.podStats(sandbox) }
        for index in response.stats.linux.containers.indices {
            CRIStatus.measureWritableLayer(&response.stats.linux.containers[index])
        }
        return response
    }
    func listPodSandboxStats(request: Runtime_V1_ListPodSandboxStatsRequest, context: ServerContext) async throws -> Runtime_V1_ListPodSandboxStatsResponse {
        var response = Runtime_V1_ListPodSandboxStatsResponse()
        for sandbox in manager.allSandboxes {
            let item: Runtime_V1_PodSandboxStats? = sandbox.lock.withLock {
                guard sandbox.record.ready else { return nil }
                if request.hasFilter {
                    if !request.filter.id.isEmpty && !sandbox.id.hasPrefix(request.filter.id) { return nil }
                    if !Self.matches(sandbox.config.labels, request.filter.labelSelector) { return nil }
                }
                return CRIStatus.podStats(sandbox)
            }
            if var item {
                for index in item.linux.containers.indices { CRIStatus.measureWritableLayer(&item.linux.containers[index]) }
                response.stats.append(item)
            }
        }
        return response
    }
    func streamPodSandboxStats(request: Runtime_V1_StreamPodSandboxStatsRequest, response: RPCWriter<Runtime_V1_StreamPodSandboxStatsResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamPodSandboxStats")
    }
    /// Keeps the node's pod CIDR: CNI configurations that use `{{.PodCIDR}}` get it.
    func updateRuntimeConfig(request: Runtime_V1_UpdateRuntimeConfigRequest, context: ServerContext) async throws -> Runtime_V1_UpdateRuntimeConfigResponse {
        let cidr = request.runtimeConfig.networkConfig.podCidr
        try manager.setPodCIDR(cidr)
        return Runtime_V1_UpdateRuntimeConfigResponse()
    }
    func checkpointContainer(request: Runtime_V1_CheckpointContainerRequest, context: ServerContext) async throws -> Runtime_V1_CheckpointContainerResponse {
        throw CRIError.unimplemented("CheckpointContainer")
    }
    func checkpointPod(request: Runtime_V1_CheckpointPodRequest, context: ServerContext) async throws -> Runtime_V1_CheckpointPodResponse {
        throw CRIError.unimplemented("CheckpointPod")
    }
    func restorePod(request: Runtime_V1_RestorePodRequest, context: ServerContext) async throws -> Runtime_V1_RestorePodResponse {
        throw CRIError.unimplemented("RestorePod")
    }
    /// podshim exports no extra metrics: the kubelet's /metrics/cadvisor gets none from it.
    func listMetricDescriptors(request: Runtime_V1_ListMetricDescriptorsRequest, context: ServerContext) async throws -> Runtime_V1_ListMetricDescriptorsResponse {
        Runtime_V1_ListMetricDescriptorsResponse()
    }
    func listPodSandboxMetrics(request: Runtime_V1_ListPodSandboxMetricsRequest, context: ServerContext) async throws -> Runtime_V1_ListPodSandboxMetricsResponse {
        Runtime_V1_ListPodSandboxMetricsResponse()
    }
    func streamPodSandboxMetrics(request: Runtime_V1_StreamPodSandboxMetricsRequest, response: RPCWriter<Runtime_V1_StreamPodSandboxMetricsResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamPodSandboxMetrics")
    }
    /// The cgroup driver podshim reads `cgroup_parent` with (`--cgroup-driver`); a kubelet ≥ 1.34
    /// follows it. The enum's zero is SYSTEMD, so the answer is always explicit.
    func runtimeConfig(request: Runtime_V1_RuntimeConfigRequest, context: ServerContext) async throws -> Runtime_V1_RuntimeConfigResponse {
        var response = Runtime_V1_RuntimeConfigResponse()
        response.linux.cgroupDriver = manager.configuration.cgroupDriver == .systemd ? .systemd : .cgroupfs
        return response
    }
    func updatePodSandboxResources(request: Runtime_V1_UpdatePodSandboxResourcesRequest, context: ServerContext) async throws -> Runtime_V1_UpdatePodSandboxResourcesResponse {
        let sandbox = try manager.sandbox(request.podSandboxID)
        guard request.hasResources else { throw CRIError.invalidArgument("resources", "required") }
        try manager.updatePodResources(sandbox, resources: request.resources,
                                       overhead: request.hasOverhead ? request.overhead : nil)
        return Runtime_V1_UpdatePodSandboxResourcesResponse()
    }
}
