import Dispatch
import GRPCCore
import PodshimCRI
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value several tasks share, behind a lock held for a few instructions.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// The pods and containers a run made and has not removed yet, shared by its workers, for the
/// teardown after a failure or a signal.
final class Ledger: Sendable {
    private struct State {
        var pods: Set<String> = []
        var containers: Set<String> = []
    }

    private let state = Mutex(State())

    init() {}

    func addPod(_ id: String) { state.withLock { _ = $0.pods.insert(id) } }
    func addContainer(_ id: String) { state.withLock { _ = $0.containers.insert(id) } }
    func removePod(_ id: String) { state.withLock { _ = $0.pods.remove(id) } }
    func removeContainer(_ id: String) { state.withLock { _ = $0.containers.remove(id) } }

    var pods: Set<String> { state.withLock { $0.pods } }
    var containers: Set<String> { state.withLock { $0.containers } }
}

enum Teardown {
    /// Stops and removes every container and pod of the run: those in `ledger` and those the
    /// runtime lists with the run's label (a RunPodSandbox cut short by a signal may still make
    /// one). Repeats while a listing finds more, three passes at most. Returns what failed.
    /// Then removes the run's `cgroup_parent` directories (``CgroupTops``), which a kubelet
    /// would remove: what is left of them is said too.
    static func removeRun(
        _ connector: Connector, spec: BenchSpec, ledger: Ledger, concurrency: Int
    ) async -> [String] {
        let session = connector.session()
        var errors = await removePodsAndContainers(connector, session, spec: spec, ledger: ledger, concurrency: concurrency)
        await session.close()
        let left = CgroupTops.remove(top: spec.cgroupTop)
        if !left.isEmpty {
            errors.append("teardown: cgroup directories not removed: \(left.joined(separator: ", "))")
        }
        return errors
    }

    private static func removePodsAndContainers(
        _ connector: Connector, _ session: BenchSession, spec: BenchSpec, ledger: Ledger, concurrency: Int
    ) async -> [String] {
        var errors: [String] = []
        for pass in 0..<3 {
            if pass > 0 { try? await Task.sleep(for: .milliseconds(500)) }
            var containers = ledger.containers
            var pods = ledger.pods
            do {
                var listContainers = Runtime_V1_ListContainersRequest()
                listContainers.filter.labelSelector = [BenchSpec.runLabel: spec.runID]
                let listed = try await session.call("ListContainers") {
                    try await session.runtime.listContainers(listContainers, options: session.options)
                }
                containers.formUnion(listed.containers.map(\.id))
                var listPods = Runtime_V1_ListPodSandboxRequest()
                listPods.filter.labelSelector = [BenchSpec.runLabel: spec.runID]
                let listedPods = try await session.call("ListPodSandbox") {
                    try await session.runtime.listPodSandbox(listPods, options: session.options)
                }
                pods.formUnion(listedPods.items.map(\.id))
            } catch {
                errors.append("teardown: \(error)")
            }
            if containers.isEmpty && pods.isEmpty { break }
            let containerErrors = await forEach(Array(containers), connector, concurrency: concurrency) { id, session in
                var book = LatencyBook.discarding
                try await ignoringNotFound { try await session.stopContainer(id, &book) }
                try await ignoringNotFound { try await session.removeContainer(id, &book) }
                ledger.removeContainer(id)
            }
            let podErrors = await forEach(Array(pods), connector, concurrency: concurrency) { id, session in
                var book = LatencyBook.discarding
                try await ignoringNotFound { try await session.stopPod(id, &book) }
                try await ignoringNotFound { try await session.removePod(id, &book) }
                ledger.removePod(id)
            }
            errors += (containerErrors + podErrors).map { "teardown: \($0)" }
        }
        return errors
    }

    private static func ignoringNotFound(_ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as BenchError where error.isNotFound {}
    }

    /// Runs `body` for each item with at most `concurrency` in flight, each worker with a
    /// session of its own; returns the errors.
    private static func forEach(
        _ items: [String], _ connector: Connector, concurrency: Int,
        _ body: @escaping @Sendable (String, BenchSession) async throws -> Void
    ) async -> [String] {
        guard !items.isEmpty else { return [] }
        let outcome = await Workers.run(items: items.count, concurrency: concurrency, stopOnError: false,
                                        state: { connector.session() }) { index, session in try await body(items[index], session) }
        for session in outcome.states { await session.close() }
        return outcome.errors.map { "\($0)" }
    }
}

/// K workers that take item indices from one counter until there are none (or one failed).
enum Workers {
    struct Outcome<State: Sendable>: Sendable {
        var states: [State]
        var errors: [any Error]
    }

    private final class Queue: Sendable {
        private let next = Mutex<(index: Int, stopped: Bool)>((0, false))
        let count: Int
        init(count: Int) { self.count = count }

        func take() -> Int? {
            next.withLock { next in
                guard !next.stopped, next.index < count else { return nil }
                defer { next.index += 1 }
                return next.index
            }
        }

        func stop() { next.withLock { $0.stopped = true } }
    }

    /// Each worker owns a `State` (say, its latency book) made by `state`, and hands it back.
    static func run<State: Sendable>(
        items: Int, concurrency: Int, stopOnError: Bool,
        state makeState: @escaping @Sendable () -> State,
        _ body: @escaping @Sendable (Int, inout State) async throws -> Void
    ) async -> Outcome<State> {
        let queue = Queue(count: items)
        let workers = Swift.max(1, Swift.min(concurrency, items))
        return await withTaskGroup(of: (State, [any Error]).self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var state = makeState()
                    var errors: [any Error] = []
                    while let index = queue.take() {
                        do {
                            try await body(index, &state)
                        } catch {
                            errors.append(error)
                            if stopOnError || error is CancellationError || Task.isCancelled {
                                queue.stop()
                                break
                            }
                        }
                    }
                    return (state, errors)
                }
            }
            var outcome = Outcome<State>(states: [], errors: [])
            for await (state, errors) in group {
                outcome.states.append(state)
                outcome.errors += errors
            }
            return outcome
        }
    }
}

private enum SignalRace<T: Sendable>: Sendable {
    case done(Result<T, any Error>)
    case signal(Int32)
    case quiet
}

/// Runs `body` as a child task that SIGINT and SIGTERM cancel; returns the signal, if one came,
/// with the body's result. The caller tears down afterwards, outside the cancelled task. (A child
/// task, not `Task {}`: it keeps the caller's executor preference.)
func withSignalCancellation<T: Sendable>(
    _ body: @escaping @Sendable () async throws -> T
) async -> (result: Result<T, any Error>, signal: Int32?) {
    let (signals, delivery) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(4))
    var sources: [any DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
        // Ignored from here on, through the teardown: a second Ctrl-C must not leave pods behind.
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { delivery.yield(number) }
        source.resume()
        sources.append(source)
    }
    defer {
        for source in sources { source.cancel() }
    }
    return await withTaskGroup(of: SignalRace<T>.self) { group in
        group.addTask {
            do { return .done(.success(try await body())) } catch { return .done(.failure(error)) }
        }
        group.addTask {
            for await number in signals { return .signal(number) }
            return .quiet
        }
        var received: Int32?
        while let event = await group.next() {
            switch event {
            case .done(let result):
                delivery.finish()
                group.cancelAll()
                return (result, received)
            case .signal(let number):
                received = number
                group.cancelAll()
            case .quiet:
                break
            }
        }
        return (.failure(CancellationError()), received)
    }
}
