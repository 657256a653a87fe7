import PodshimCRI

/// `podshim-bench rpc`: the latency of each CRI RPC one at a time (on one connection at a time,
/// renewed every ``callsPerConnection`` calls), with `backgroundPods` other pods running; then pod
/// and container lifecycles.
struct RPCBenchmark: Sendable {
    let session: BenchSession
    let spec: BenchSpec
    let ledger: Ledger
    let runs: Int
    let warmup: Int
    let backgroundPods: Int
    /// Untimed lifecycle cycles before the timed ones.
    let cycleWarmup: Int
    /// The daemon's pids (summed) whose CPU time each read-only RPC's timed calls cost, or none.
    let pids: [Int32]

    struct Result: Sendable {
        /// Read-only RPCs, then the seven lifecycle RPCs.
        var rpcs = LatencyBook()
        /// `pod_cycle` and `container_cycle`.
        var cycles = LatencyBook()
        /// The runtime's start-path stages, if it reports them.
        var profile = LatencyBook()
        var notes: [String] = []
        /// Connections the run opened (a fresh one every ``callsPerConnection`` calls).
        var connections = 0
    }

    func run() async throws -> Result {
        var result = Result()
        try await session.requireImage(spec.image)
        var setup = LatencyBook()
        for i in 0..<backgroundPods {
            _ = try await startPod(role: "bg\(i)", &setup)
        }
        let target = try await startPod(role: "target", &setup)
        try await measureReads(target: target, &result)
        try await measurePodCycles(&result)
        try await measureContainerCycles(target: target, &result)
        result.connections = session.connectionsOpened
        return result
    }

    /// A pod with one running `sleep 3600`.
    private func startPod(role: String, _ book: inout LatencyBook) async throws -> (pod: String, config: Runtime_V1_PodSandboxConfig, container: String) {
        let config = spec.pod(role)
        let pod = try await session.runPod(config, &book)
        ledger.addPod(pod)
        let container = try await session.createContainer(pod: pod, config, spec.container("sleep"), &book)
        ledger.addContainer(container)
        try await session.startContainer(container, &book)
        return (pod, config, container)
    }

    // MARK: Read-only RPCs

    private struct ReadRPC {
        let name: String
        /// One call on the session's current connection.
        let call: (BenchSession) async throws -> Void
    }

    /// Each read-only RPC `warmup` times untimed, then `5 × runs` times timed one by one, with
    /// the daemon's CPU time over the timed calls (``ServerCPUMeter``). One failing with anything
    /// but UNIMPLEMENTED is recorded as an error, and the next one runs.
    private func measureReads(target: (pod: String, config: Runtime_V1_PodSandboxConfig, container: String), _ result: inout Result) async throws {
        var podStatus = Runtime_V1_PodSandboxStatusRequest()
        podStatus.podSandboxID = target.pod
        var containerStatus = Runtime_V1_ContainerStatusRequest()
        containerStatus.containerID = target.container
        var containerStats = Runtime_V1_ContainerStatsRequest()
        containerStats.containerID = target.container
        var imageStatus = Runtime_V1_ImageStatusRequest()
        imageStatus.image.image = spec.image
        let reads: [ReadRPC] = [
            ReadRPC(name: "Version") { _ = try await $0.runtime.version(Runtime_V1_VersionRequest(), options: $0.options) },
            ReadRPC(name: "Status") { _ = try await $0.runtime.status(Runtime_V1_StatusRequest(), options: $0.options) },
            ReadRPC(name: "ListPodSandbox") { _ = try await $0.runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest(), options: $0.options) },
            ReadRPC(name: "ListContainers") { _ = try await $0.runtime.listContainers(Runtime_V1_ListContainersRequest(), options: $0.options) },
            ReadRPC(name: "PodSandboxStatus") { _ = try await $0.runtime.podSandboxStatus(podStatus, options: $0.options) },
            ReadRPC(name: "ContainerStatus") { _ = try await $0.runtime.containerStatus(containerStatus, options: $0.options) },
            ReadRPC(name: "ContainerStats") { _ = try await $0.runtime.containerStats(containerStats, options: $0.options) },
            ReadRPC(name: "ListContainerStats") { _ = try await $0.runtime.listContainerStats(Runtime_V1_ListContainerStatsRequest(), options: $0.options) },
            ReadRPC(name: "ListPodSandboxStats") { _ = try await $0.runtime.listPodSandboxStats(Runtime_V1_ListPodSandboxStatsRequest(), options: $0.options) },
            ReadRPC(name: "ListImages") { _ = try await $0.images.listImages(Runtime_V1_ListImagesRequest(), options: $0.options) },
            ReadRPC(name: "ImageStatus") { _ = try await $0.images.imageStatus(imageStatus, options: $0.options) },
            ReadRPC(name: "ImageFsInfo") { _ = try await $0.images.imageFsInfo(Runtime_V1_ImageFsInfoRequest(), options: $0.options) },
        ]
        let session = self.session
        for read in reads {
            let calls = runs * 5
            var book = LatencyBook()
            var cpu = ServerCPUMeter(pids: pids)
            do {
                for _ in 0..<warmup { try await session.call(read.name) { try await read.call(session) } }
                for _ in 0..<calls {
                    // A fresh connection (and its untimed Version) outside the timed call and
                    // outside the daemon's CPU count.
                    if session.needsPreparation(for: 1) {
                        cpu.pause()
                        try await session.prepare(1)
                        cpu.resume()
                    } else if !cpu.running {
                        cpu.resume()
                    }
                    let start = monotonicNanoseconds()
                    try await session.call(read.name) { try await read.call(session) }
                    book.record(read.name, since: start)
                }
                result.rpcs.merge(book)
                if let perCall = cpu.finish(calls: calls) {
                    result.rpcs.setServerCPU(read.name, microseconds: (perCall * 10).rounded() / 10)
                }
            } catch let error as BenchError where error.isUnimplemented {
                result.rpcs.markUnimplemented(read.name)
                result.notes.append("\(read.name): unimplemented")
            } catch let error as BenchError {
                guard case .rpc(_, let code, let message) = error else { throw error }
                result.rpcs.markFailed(read.name, error: "\(code): \(message)")
                result.notes.append("\(read.name): \(code): \(message)")
            }
        }
    }

    // MARK: Lifecycles

    /// RunPodSandbox, CreateContainer, StartContainer, StopContainer(0), RemoveContainer,
    /// StopPodSandbox, RemovePodSandbox, each timed; `pod_cycle` is their sum (the verbose
    /// ContainerStatus that reads the start profile between them is not counted).
    private func measurePodCycles(_ result: inout Result) async throws {
        var scratch = LatencyBook()
        for i in 0..<(cycleWarmup + runs) {
            if i < cycleWarmup {
                _ = try await podCycle(i, &scratch, readProfile: false)
                continue
            }
            let before = result.rpcs.total
            let profile = try await podCycle(i, &result.rpcs, readProfile: true)
            result.cycles.record("pod_cycle", nanoseconds: result.rpcs.total &- before)
            switch profile {
            case .some(.success(let profile)): result.profile.record(profile)
            case .some(.failure(let unreadable)) where result.notes.count < 20:
                result.notes.append("\(StartProfile.infoKey): not {\"stages\":[{\"stage\",\"ns\"}]}: \(unreadable.text.prefix(200))")
            default: break
            }
        }
    }

    /// A start profile that is not `{"stages":[{"stage","ns"}]}`.
    private struct UnreadableProfile: Error {
        let text: String
    }

    /// One pod cycle, each RPC recorded in `book`; the start profile, if asked for and reported.
    private func podCycle(_ i: Int, _ book: inout LatencyBook, readProfile: Bool) async throws -> Swift.Result<StartProfile, UnreadableProfile>? {
        // The whole cycle on one established connection (each timed call would renew it outside
        // its time anyway).
        try await session.prepare(8)
        let config = spec.pod("cycle\(i)")
        let pod = try await session.runPod(config, &book)
        ledger.addPod(pod)
        let container = try await session.createContainer(pod: pod, config, spec.container("sleep"), &book)
        ledger.addContainer(container)
        try await session.startContainer(container, &book)
        let profile = readProfile ? try await startProfile(container) : nil
        try await session.stopContainer(container, &book)
        try await session.removeContainer(container, &book)
        ledger.removeContainer(container)
        try await session.stopPod(pod, &book)
        try await session.removePod(pod, &book)
        ledger.removePod(pod)
        return profile
    }

    /// The runtime's start-path stages of `container`, if it reports them.
    private func startProfile(_ container: String) async throws -> Swift.Result<StartProfile, UnreadableProfile>? {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = container
        request.verbose = true
        let status = try await session.call("ContainerStatus") {
            try await session.runtime.containerStatus(request, options: session.options)
        }
        guard let text = status.info[StartProfile.infoKey] else { return nil }
        guard let profile = try? StartProfile.parse(text) else { return .failure(UnreadableProfile(text: text)) }
        return .success(profile)
    }

    /// In the target pod: CreateContainer, StartContainer, StopContainer(0), RemoveContainer of a
    /// `sleep 3600`, timed as a whole.
    private func measureContainerCycles(target: (pod: String, config: Runtime_V1_PodSandboxConfig, container: String), _ result: inout Result) async throws {
        var scratch = LatencyBook()
        for i in 0..<(cycleWarmup + runs) {
            // Timed as a whole: a fresh connection, if due, before the clock starts.
            try await session.prepare(4)
            let start = monotonicNanoseconds()
            let container = try await session.createContainer(pod: target.pod, target.config, spec.container("cycle\(i)"), &scratch)
            ledger.addContainer(container)
            try await session.startContainer(container, &scratch)
            try await session.stopContainer(container, &scratch)
            try await session.removeContainer(container, &scratch)
            let end = monotonicNanoseconds()
            ledger.removeContainer(container)
            if i >= cycleWarmup { result.cycles.record("container_cycle", nanoseconds: end &- start) }
        }
    }
}
