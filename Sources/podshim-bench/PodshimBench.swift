import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `podshim-bench`: a CRI benchmark client for any runtime.v1 server on a unix socket.
@main
struct PodshimBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "podshim-bench",
        abstract: "Benchmark a CRI runtime (podshim, containerd) over its unix socket.",
        subcommands: [RPC.self, Scale.self])
}

/// What every subcommand takes.
struct BenchOptions: ParsableArguments {
    @Option(help: "The runtime's CRI unix socket.")
    var socket: String

    @Option(help: "The container image (already present in the runtime).")
    var image: String = "busybox"

    @Option(help: "The runtime's name in the report.")
    var label: String = "runtime"

    @Option(help: "Write the JSON report to this file.")
    var json: String?

    @Option(help: "The pods' metadata namespace.")
    var namespace: String = "bench"

    @Flag(inversion: .prefixedNo, help: "Pods in the host's network namespace (no CNI).")
    var hostNetwork = true

    @Option(name: .customLong("timeout"), help: "The deadline of each RPC, in seconds.")
    var timeoutSeconds: Double = 60

    @Option(help: ArgumentHelp("The run's id (lowercase letters, digits, dashes; default: random): in pod names, the "
                               + "podshim-bench.run label and the pods' cgroup parent /podshim-bench-<id>/pod<uid>."))
    var runID: String?

    var spec: BenchSpec {
        BenchSpec(namespace: namespace, image: image, hostNetwork: hostNetwork, runID: runID ?? BenchSpec.randomRunID())
    }

    var timeout: Duration { .milliseconds(Int64(timeoutSeconds * 1000)) }

    func validate() throws {
        guard timeoutSeconds > 0 else { throw ValidationError("--timeout must be positive") }
        if let runID, !BenchSpec.validRunID(runID) {
            throw ValidationError("--run-id must be 1-32 lowercase letters, digits or dashes")
        }
    }
}

extension PodshimBench {
    struct RPC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rpc",
            abstract: "Latency of each CRI RPC, one at a time (a fresh connection every 100 calls), and of pod and container lifecycles.")

        @OptionGroup var options: BenchOptions

        @Option(help: "Timed pod and container cycles; read-only RPCs are timed 5× as often.")
        var runs = 200

        @Option(help: "Untimed calls of each read-only RPC first.")
        var warmup = 20

        @Option(help: "Untimed pod and container cycles first.")
        var cycleWarmup = 2

        @Option(help: "Pods with one running container each, there throughout.")
        var backgroundPods = 10

        @Option(name: .customLong("pid"),
                help: "The daemon's pid (repeatable; summed): its CPU time (/proc/PID/stat) per read-only call, a mean.")
        var pids: [Int32] = []

        func validate() throws {
            guard runs > 0, warmup >= 0, cycleWarmup >= 0, backgroundPods >= 0 else {
                throw ValidationError("--runs must be positive; --warmup, --cycle-warmup, --background-pods not negative")
            }
            for pid in pids where ProcCPU.read(pids: [pid]) == nil {
                throw ValidationError("--pid \(pid): cannot read /proc/\(pid)/stat")
            }
        }

        func run() async throws {
            let options = self.options, runs = self.runs, warmup = self.warmup
            let cycleWarmup = self.cycleWarmup, backgroundPods = self.backgroundPods, pids = self.pids
            let spec = options.spec
            try await runBenchmark(options, spec: spec, concurrency: 8) { connector, ledger in
                // Its connection is closed with the others at the end (Connector.with).
                let session = connector.session()
                return try await RPCBenchmark(
                    session: session, spec: spec, ledger: ledger, runs: runs, warmup: warmup,
                    backgroundPods: backgroundPods, cycleWarmup: cycleWarmup, pids: pids
                ).run()
            } report: { result, errors in
                print("\(options.label): \(runs * 5) calls per read-only RPC, \(runs) cycles, \(backgroundPods) background pods")
                print(Report.table(result.rpcs, title: "rpc"), terminator: "")
                print(Report.table(result.cycles, title: "cycle"), terminator: "")
                print(Report.table(result.profile, title: "start stage"), terminator: "")
                for note in result.notes + errors { print("note: \(note)") }
                return Report.rpc(label: options.label, runID: spec.runID, runs: runs, warmup: warmup,
                                  backgroundPods: backgroundPods, pids: pids, result, errors: errors)
            }
        }
    }

    struct Scale: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "scale",
            abstract: "Start many pods with concurrent workers, remove them; the daemon's threads and memory meanwhile.")

        @OptionGroup var options: BenchOptions

        @Option(help: "Pods to start.")
        var pods: Int

        @Option(help: "`sleep 3600` containers per pod.")
        var containers = 2

        @Option(help: "Requests in flight at most (workers).")
        var concurrency = 32

        @Option(name: .customLong("pid"), help: "The daemon's pid (repeatable; summed): threads and VmRSS from /proc.")
        var pids: [Int32] = []

        func validate() throws {
            guard pods > 0, containers >= 0, concurrency > 0 else {
                throw ValidationError("--pods and --concurrency must be positive, --containers not negative")
            }
            for pid in pids where ProcSnapshot.read(pids: [pid]) == nil {
                throw ValidationError("--pid \(pid): cannot read /proc/\(pid)/status")
            }
        }

        func run() async throws {
            let options = self.options, pods = self.pods, containers = self.containers
            let concurrency = self.concurrency, pids = self.pids
            let spec = options.spec
            try await runBenchmark(options, spec: spec, concurrency: concurrency) { connector, ledger in
                // Its connection is closed with the others at the end (Connector.with).
                let session = connector.session()
                return try await ScaleBenchmark(
                    connector: connector, session: session, spec: spec, ledger: ledger, pods: pods, containers: containers,
                    concurrency: concurrency, pids: pids
                ).run()
            } report: { result, errors in
                print("\(options.label): \(pods) pods × \(containers) containers, \(concurrency) in flight")
                print("  start  \(seconds(result.startNanoseconds)) s   remove  \(seconds(result.removeNanoseconds)) s")
                if let before = result.before, let running = result.running, let peak = result.peak, let end = result.end {
                    print("  threads start \(before.threads)  peak \(peak.threads)  end \(end.threads)")
                    print("  VmRSS   start \(before.rssKB) kB  running \(running.rssKB) kB  peak \(peak.rssKB) kB  end \(end.rssKB) kB  (\((running.rssKB - before.rssKB) / pods) kB a pod)")
                }
                print(Report.table(result.rpcs, title: "rpc"), terminator: "")
                for error in errors { print("note: \(error)") }
                return Report.scale(label: options.label, runID: spec.runID, pods: pods, containers: containers, concurrency: concurrency, pids: pids, result, errors: errors)
            }
        }

        private func seconds(_ nanoseconds: UInt64) -> String {
            String(format: "%.3f", Double(nanoseconds) / 1e9)
        }
    }
}

/// Connects, runs `body` so that SIGINT/SIGTERM cancel it, tears down whatever the run made
/// (always), then writes the report — or, on failure, says why and exits non-zero.
private func runBenchmark<Result: Sendable>(
    _ options: BenchOptions, spec: BenchSpec, concurrency: Int,
    _ body: @escaping @Sendable (Connector, Ledger) async throws -> Result,
    report: (Result, [String]) -> BenchJSON
) async throws {
    let ledger = Ledger()
    let (outcome, signal, teardownErrors): (Swift.Result<Result, any Error>, Int32?, [String])
    do {
        (outcome, signal, teardownErrors) = try await Connector.with(socket: options.socket, timeout: options.timeout) { connector in
            let (outcome, signal) = await withSignalCancellation { try await body(connector, ledger) }
            let errors = await Teardown.removeRun(connector, spec: spec, ledger: ledger, concurrency: concurrency)
            return (outcome, signal, errors)
        }
    } catch {
        printError("podshim-bench: \(options.socket): \(error)")
        throw ExitCode.failure
    }
    for error in teardownErrors { printError("podshim-bench: \(error)") }
    if let signal {
        printError("podshim-bench: interrupted by signal \(signal); removed what the run made")
        throw ExitCode(128 + signal)
    }
    switch outcome {
    case .failure(let error):
        printError("podshim-bench: \(error)")
        throw ExitCode.failure
    case .success(let result):
        let json = report(result, teardownErrors).rendered() + "\n"
        if let path = options.json {
            do {
                try json.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                printError("podshim-bench: cannot write \(path): \(error)")
                throw ExitCode.failure
            }
        }
    }
}

private func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
