/// `podshim-bench scale`: start `pods` pods of `containers` containers each with `concurrency`
/// workers, then remove them all the same way; the daemon's threads and memory meanwhile.
struct ScaleBenchmark: Sendable {
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
    }

    func run() async throws -> Result {
        var result = Result()
        try await session.requireImage(spec.image)
        let sampler = pids.isEmpty ? nil : sampleProcPeak(pids: pids)
        defer { sampler?.cancel() }
        result.before = readDaemon()

        // Start: pod i is RunPodSandbox, then CreateContainer + StartContainer for each container.
        let session = self.session, spec = self.spec, ledger = self.ledger, containers = self.containers
        let started = Locked<[(pod: String, containers: [String])]>([])
        let startBegin = monotonicNanoseconds()
        let start = await Workers.run(items: pods, concurrency: concurrency, stopOnError: true, state: { LatencyBook() }) { i, book in
            let config = spec.pod("scale\(i)")
            let pod = try await session.runPod(config, &book)
            ledger.addPod(pod)
            var ids: [String] = []
            for c in 0..<containers {
                let id = try await session.createContainer(pod: pod, config, spec.container("c\(c)"), &book)
                ledger.addContainer(id)
                ids.append(id)
                try await session.startContainer(id, &book)
            }
            started.withLock { $0.append((pod, ids)) }
        }
        result.startNanoseconds = monotonicNanoseconds() &- startBegin
        for book in start.states { result.rpcs.merge(book) }
        if let error = start.errors.first { throw error }
        result.running = readDaemon()

        // Remove: StopContainer(0) + RemoveContainer for each container, StopPodSandbox, RemovePodSandbox.
        let made = started.withLock { $0 }
        let removeBegin = monotonicNanoseconds()
        let remove = await Workers.run(items: made.count, concurrency: concurrency, stopOnError: true, state: { LatencyBook() }) { i, book in
            let (pod, ids) = made[i]
            for id in ids {
                try await session.stopContainer(id, &book)
                try await session.removeContainer(id, &book)
                ledger.removeContainer(id)
            }
            try await session.stopPod(pod, &book)
            try await session.removePod(pod, &book)
            ledger.removePod(pod)
        }
        result.removeNanoseconds = monotonicNanoseconds() &- removeBegin
        for book in remove.states { result.rpcs.merge(book) }
        if let error = remove.errors.first { throw error }

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
