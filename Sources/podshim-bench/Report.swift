import Foundation

/// The JSON report and the human summary of a run.
enum Report {
    /// `{"Version":{stats…, "server_cpu_us":…}, …, "ListPodSandboxStats":{"unimplemented":true},
    /// "ImageFsInfo":{"error":"<code>: <message>"}}`, in book order.
    static func stats(_ book: LatencyBook) -> BenchJSON {
        .object(book.entries.map { entry in
            if let error = entry.error { return (entry.name, .object([("error", .string(error))])) }
            guard let histogram = entry.histogram else { return (entry.name, .object([("unimplemented", .bool(true))])) }
            guard case .object(var members) = LatencyStats(histogram).json else { preconditionFailure() }
            if let cpu = entry.serverCPUMicroseconds { members.append(("server_cpu_us", .number(cpu))) }
            return (entry.name, .object(members))
        })
    }

    /// What `server_cpu_us` is, in the rpc report.
    static let serverCPUNote = "server_cpu_us: mean CPU time (utime+stime, /proc/PID/stat, clock ticks) of the --pid "
        + "processes per call over a read-only RPC's timed calls (5 x runs), connection renewals excluded"

    /// `[{"stage":…,"count":…,"p50_us":…,…}, …]`, stages in the order first seen.
    static func profile(_ book: LatencyBook) -> BenchJSON {
        .array(book.entries.compactMap { entry in
            guard let histogram = entry.histogram, case .object(let members) = LatencyStats(histogram).json else { return nil }
            return .object([("stage", .string(entry.name))] + members)
        })
    }

    static func rpc(label: String, runID: String, runs: Int, warmup: Int, backgroundPods: Int, pids: [Int32],
                    _ result: RPCBenchmark.Result, errors: [String]) -> BenchJSON {
        var members: [(String, BenchJSON)] = [
            ("label", .string(label)), ("mode", .string("rpc")), ("run_id", .string(runID)), ("runs", .int(Int64(runs))),
            ("warmup", .int(Int64(warmup))), ("background_pods", .int(Int64(backgroundPods))),
            ("calls_per_connection", .int(Int64(callsPerConnection))), ("connections", .int(Int64(result.connections))),
        ]
        if !pids.isEmpty {
            members += [("pids", .array(pids.map { .int(Int64($0)) })), ("server_cpu_note", .string(serverCPUNote)),
                        ("clock_ticks_per_second", .int(Int64(ProcCPU.ticksPerSecond)))]
        }
        members += [
            ("rpcs", stats(result.rpcs)),
            ("cycles", stats(result.cycles)),
        ]
        if !result.profile.entries.isEmpty { members.append(("profile", profile(result.profile))) }
        members.append(("errors", .array((result.notes + errors).map { .string($0) })))
        return .object(members)
    }

    static func scale(label: String, runID: String, pods: Int, containers: Int, concurrency: Int, pids: [Int32],
                      _ result: ScaleBenchmark.Result, errors: [String]) -> BenchJSON {
        var members: [(String, BenchJSON)] = [
            ("label", .string(label)), ("mode", .string("scale")), ("run_id", .string(runID)), ("pods", .int(Int64(pods))),
            ("containers", .int(Int64(containers))), ("concurrency", .int(Int64(concurrency))),
            ("calls_per_connection", .int(Int64(callsPerConnection))), ("connections", .int(Int64(result.connections))),
            ("start_s", .seconds(result.startNanoseconds)), ("remove_s", .seconds(result.removeNanoseconds)),
        ]
        if !pids.isEmpty {
            func int(_ value: Int?) -> BenchJSON { value.map { .int(Int64($0)) } ?? .null }
            members += [
                ("pids", .array(pids.map { .int(Int64($0)) })),
                ("threads_start", int(result.before?.threads)), ("threads_peak", int(result.peak?.threads)),
                ("threads_end", int(result.end?.threads)),
                ("rss_kb_start", int(result.before?.rssKB)), ("rss_kb_running", int(result.running?.rssKB)),
                ("rss_kb_peak", int(result.peak?.rssKB)), ("rss_kb_end", int(result.end?.rssKB)),
            ]
            if let start = result.before?.rssKB, let running = result.running?.rssKB, pods > 0 {
                members.append(("rss_kb_per_pod", .number((Double(running - start) / Double(pods) * 10).rounded() / 10)))
            } else {
                members.append(("rss_kb_per_pod", .null))
            }
        }
        members.append(("rpcs", stats(result.rpcs)))
        members.append(("errors", .array(errors.map { .string($0) })))
        return .object(members)
    }

    // MARK: Human summary

    /// One line per histogram: name, count, p50, p99, max, and the daemon's mean CPU per call
    /// where measured.
    static func table(_ book: LatencyBook, title: String) -> String {
        guard !book.entries.isEmpty else { return "" }
        let width = max(20, (book.entries.map(\.name.count).max() ?? 0) + 3)
        let cpu = book.entries.contains { $0.serverCPUMicroseconds != nil }
        var out = "\(title)\(String(repeating: " ", count: max(1, width - title.count)))\(pad("count", 7))\(pad("p50 µs", 11))\(pad("p99 µs", 11))\(pad("max µs", 11))"
        out += (cpu ? pad("server CPU µs (mean)", 22) : "") + "\n"
        for entry in book.entries {
            out += "  \(entry.name)\(String(repeating: " ", count: max(1, width - 2 - entry.name.count)))"
            if let error = entry.error {
                out += pad("error", 7) + "  " + error.prefix(100)
            } else if let histogram = entry.histogram {
                let stats = LatencyStats(histogram)
                out += pad(String(stats.count), 7) + pad(micros(stats.p50), 11) + pad(micros(stats.p99), 11) + pad(micros(stats.max), 11)
                if let cpu = entry.serverCPUMicroseconds { out += pad(String(format: "%.1f", cpu), 22) }
            } else {
                out += pad("unimplemented", 18)
            }
            out += "\n"
        }
        return out
    }

    private static func micros(_ nanoseconds: UInt64) -> String {
        let tenths = (nanoseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10)"
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(1, width - text.count)) + text
    }
}
