/// `podshim-bench scale`: start `pods` pods of `containers` containers each with `concurrency`
/// workers, then remove them all the same way; the daemon's threads and memory meanwhile.
/// Each worker has a session of its own (a connection renewed every ``callsPerConnection``
/// calls, between pods where it can: see ``Worker``).
struct ScaleBenchmark: Sendable {
    let connector: Connector
    /// For the calls outside the workers.
    let session: BenchSession
    let spec: BenchSpec
    let ledger: Ledger
    let pods: Int
    let containers: Int
    let concurrency: Int
    /// The daemon's pids (summed), or none.
    let pids: [Int32]

    struct Result: Sendable {
        var rpcs = LatencyBook()
        var startNanoseconds: UInt64 = 0
        var removeNanoseconds: UInt64 = 0
        /// Present when pids were given.
        var before: ProcSnapshot?
        var running: ProcSnapshot?
        var end: ProcSnapshot?
        var peak: ProcSnapshot?
        /// Connections opened (each worker's, renewed every ``callsPerConnection`` calls).
        var connections = 0
    }

    func run() async throws -> Result {
        var result = Result()
        try await session.requireImage(spec.image)
        let sampler = pids.isEmpty ? nil : sampleProcPeak(pids: pids)
        defer { sampler?.cancel() }
        result.before = readDaemon()

        // Start: pod i is RunPodSandbox, then CreateContainer + StartContainer for each container.
        let connector = self.connector, spec = self.spec, ledger = self.ledger, containers = self.containers
        let started = Locked<[(pod: String, containers: [String])]>([])
        let startBegin = monotonicNanoseconds()
        let start = await Workers.run(items: pods, concurrency: concurrency, stopOnError: true,
                                      state: { Worker(connector.session()) }) { i, worker in
            let session = worker.session
            // A fresh connection, if due, before the pod's calls (each is timed on its own).
            try await session.prepare(1 + 2 * containers)
            let config = spec.pod("scale\(i)")
            let pod = try await session.runPod(config, &worker.book)
            ledger.addPod(pod)
            var ids: [String] = []
            for c in 0..<containers {
                let id = try await session.createContainer(pod: pod, config, spec.container("c\(c)"), &worker.book)
                ledger.addContainer(id)
                ids.append(id)
                try await session.startContainer(id, &worker.book)
            }
            started.withLock { $0.append((pod, ids)) }
        }
        result.startNanoseconds = monotonicNanoseconds() &- startBegin
        for worker in start.states {
            result.rpcs.merge(worker.book)
            await worker.session.close()
        }
        if let error = start.errors.first { throw error }
        result.running = readDaemon()

        // Remove: StopContainer(0) + RemoveContainer for each container, StopPodSandbox, RemovePodSandbox.
        let made = started.withLock { $0 }
        let removeBegin = monotonicNanoseconds()
        let remove = await Workers.run(items: made.count, concurrency: concurrency, stopOnError: true,
                                       state: { Worker(connector.session()) }) { i, worker in
            let (pod, ids) = made[i]
            let session = worker.session
            try await session.prepare(2 * ids.count + 2)
            for id in ids {
                try await session.stopContainer(id, &worker.book)
                try await session.removeContainer(id, &worker.book)
                ledger.removeContainer(id)
            }
            try await session.stopPod(pod, &worker.book)
            try await session.removePod(pod, &worker.book)
            ledger.removePod(pod)
        }
        result.removeNanoseconds = monotonicNanoseconds() &- removeBegin
        for worker in remove.states {
            result.rpcs.merge(worker.book)
            await worker.session.close()
        }
        if let error = remove.errors.first { throw error }
        result.connections = connector.connectionsOpened

        if !pids.isEmpty {
            try await Task.sleep(for: .seconds(2))
            result.end = readDaemon()
        }
        if let sampler {
            sampler.cancel()
            var peak = await sampler.value
            for snapshot in [result.before, result.running, result.end].compactMap({ $0 }) { peak = peak.peak(with: snapshot) }
            result.peak = peak
        }
        return result
    }

    private func readDaemon() -> ProcSnapshot? {
        pids.isEmpty ? nil : ProcSnapshot.read(pids: pids)
    }
}

/// A scale worker's own session and latency book.
struct Worker: Sendable {
    let session: BenchSession
    var book = LatencyBook()

    init(_ session: BenchSession) { self.session = session }
}
