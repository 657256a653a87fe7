import Foundation
import Glibc
import XCTest

/// Drives the real `podshim` binary, as root, against throw-away directories, and proves that
/// nothing is left behind afterwards.
///
/// Every test gets its own state, data, image and log directories under /tmp; teardown kills a
/// podshim the test started if it still runs, runs `podshim cleanup`, and checks the host.
final class PodshimHarness {
    let base: String
    let stateDir: String
    let rootDir: String
    let logDir: String
    static let imageDir = NSTemporaryDirectory() + "podshim-it-images"
    private var launched: [Process] = []

    /// Skips the test unless root; builds the pause binary, the test image and the probe once.
    static func make(file: StaticString = #filePath) throws -> PodshimHarness {
        guard getuid() == 0 else {
            throw XCTSkip("integration tests need root (namespaces, mounts, pivot_root); run them with sudo")
        }
        try prepareOnce()
        return PodshimHarness()
    }

    /// Test pods live under $PODSHIM_TEST_DIR (default the temp dir): overlayfs needs its upper
    /// directory on a filesystem that is not itself an overlay (in the VM: /run, a tmpfs).
    private init() {
        let parent = ProcessInfo.processInfo.environment["PODSHIM_TEST_DIR"].map { $0.hasSuffix("/") ? $0 : $0 + "/" }
            ?? NSTemporaryDirectory()
        base = parent + "podshim-it-" + UUID().uuidString.prefix(8).lowercased()
        stateDir = base + "/state"
        rootDir = base + "/root"
        logDir = base + "/logs"
    }

    // MARK: - Built artifacts

    static let buildDirectory: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        var directory = (executable as NSString).deletingLastPathComponent
        // The xctest runner lives in <build>/podshimPackageTests.xctest on Linux.
        while !directory.isEmpty && directory != "/" && !FileManager.default.fileExists(atPath: directory + "/podshim") {
            directory = (directory as NSString).deletingLastPathComponent
        }
        return directory
    }()
    static var podshim: String { buildDirectory + "/podshim" }
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    private static let prepared: Result<Void, Error> = Result {
        guard FileManager.default.isExecutableFile(atPath: podshim) else {
            throw HarnessError("podshim binary not found next to the test runner (\(buildDirectory)); run swift build first")
        }
        try shell("\(packageRoot)/hack/build-pause.sh \(buildDirectory)/podshim-pause >/dev/null")
        let probe = imageDir + "/busybox/rootfs/bin/probe"
        let source = packageRoot + "/Tests/PodshimIntegrationTests/Fixtures/probe.c"
        if !FileManager.default.fileExists(atPath: imageDir + "/busybox/rootfs/bin/busybox") {
            try shell("\(packageRoot)/hack/make-busybox-image.sh \(imageDir) >/dev/null")
        }
        if !FileManager.default.fileExists(atPath: probe) || (try? shell("[ \(source) -nt \(probe) ]")) != nil {
            try shell("cc -static -O2 -o \(probe) \(source)")
        }
    }

    private static func prepareOnce() throws { try prepared.get() }

    @discardableResult
    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("`\(command)` failed with status \(process.terminationStatus)")
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: - Running pods

    /// A running `podshim run`.
    final class Run {
        let process: Process
        let stdoutPath: String
        let stderrPath: String

        init(process: Process, stdoutPath: String, stderrPath: String) {
            self.process = process
            self.stdoutPath = stdoutPath
            self.stderrPath = stderrPath
        }

        var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// Waits for podshim to exit (at most `timeout` seconds) and returns its status.
        @discardableResult
        func wait(timeout: Double = 60) throws -> Int32 {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            guard !process.isRunning else { throw HarnessError("podshim still running after \(timeout)s:\n\(stderr)") }
            return process.terminationStatus
        }

        func send(_ signal: Int32) { kill(process.processIdentifier, signal) }

        /// Lines a container printed on stdout (`name | text` in podshim's output).
        func lines(of container: String) -> [String] {
            // "\r\n" (a terminal's line end) is one Character to Swift: split on the scalars.
            stdout.replacingOccurrences(of: "\r\n", with: "\r \n").split(separator: "\n").compactMap { line in
                let parts = line.split(separator: "|", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == container else { return nil }
                return String(parts[1].dropFirst())
            }
        }
    }

    /// Starts `podshim run` on `manifest` (YAML text) without waiting.
    func start(_ manifest: String, extraArguments: [String] = []) throws -> Run {
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let file = base + "/pod-\(launched.count).yaml"
        try manifest.write(toFile: file, atomically: false, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.podshim)
        process.arguments = ["run", file] + commonArguments + extraArguments
        let stdoutPath = base + "/out-\(launched.count).txt", stderrPath = base + "/err-\(launched.count).txt"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        launched.append(process)
        return Run(process: process, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Runs `podshim run` on `manifest` to completion.
    func run(_ manifest: String, timeout: Double = 60) throws -> (status: Int32, run: Run) {
        let run = try start(manifest)
        let status = try run.wait(timeout: timeout)
        return (status, run)
    }

    var commonArguments: [String] {
        ["--state-dir", stateDir, "--root", rootDir, "--log-dir", logDir, "--image-dir", Self.imageDir]
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    func eventually(timeout: Double = 20, _ what: String, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else { throw HarnessError("timed out waiting for \(what)") }
            usleep(20_000)
        }
    }

    /// The pod record podshim wrote for pod uid `uid`.
    func record(uid: String) -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: stateDir + "/pods/\(uid)/pod.json") else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// PIDs in a record once it holds the sandbox and `containers` containers. podshim records a
    /// process right after its clone returns, which (CLONE_VFORK) is after it exec'd: a container
    /// can print before its pid is on disk.
    func recordedPIDs(uid: String, waitingFor containers: Int) throws -> (sandbox: Int32?, containers: [String: Int32]) {
        try eventually("the pod record to hold the sandbox and \(containers) container(s)") {
            let pids = recordedPIDs(uid: uid)
            return pids.sandbox != nil && pids.containers.count >= containers
        }
        return recordedPIDs(uid: uid)
    }

    /// PIDs in a record: sandbox first, then containers.
    func recordedPIDs(uid: String) -> (sandbox: Int32?, containers: [String: Int32]) {
        guard let record = record(uid: uid) else { return (nil, [:]) }
        let sandbox = (record["sandbox"] as? [String: Any])?["pid"] as? Int
        var containers: [String: Int32] = [:]
        for (name, value) in (record["containers"] as? [String: Any]) ?? [:] {
            if let pid = (value as? [String: Any])?["pid"] as? Int { containers[name] = Int32(pid) }
        }
        return (sandbox.map(Int32.init), containers)
    }

    // MARK: - Leftovers

    /// Everything of this harness's pods still on the host: mounts, pod directories, processes.
    func leftovers(processes pids: [Int32] = [], namespaces: [String] = []) -> [String] {
        var found: [String] = []
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in mountinfo.split(separator: "\n") where line.contains(base) {
            found.append("mount: \(line)")
        }
        for directory in [stateDir + "/pods", rootDir + "/pods"] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            found += entries.map { "directory: \(directory)/\($0)" }
        }
        for pid in pids where isRunning(pid) {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "?"
            found.append("process: \(pid) \(comm.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if !namespaces.isEmpty {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
                for kind in ["net", "ipc", "uts", "pid", "mnt"] {
                    if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/ns/\(kind)"),
                       namespaces.contains(link) {
                        found.append("namespace: \(link) held by pid \(entry)")
                    }
                }
            }
        }
        return found
    }

    /// Kills podshim processes this harness started (only those), cleans up, removes the directories.
    func tearDown() {
        for process in launched where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        if FileManager.default.fileExists(atPath: base) {
            _ = try? Self.shell("\(Self.podshim) cleanup \(commonArguments.joined(separator: " ")) >/dev/null 2>&1")
            let mounts = ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "")
                .split(separator: "\n").compactMap { $0.split(separator: " ").dropFirst(4).first.map(String.init) }
                .filter { $0.hasPrefix(base) }.sorted { $0.count > $1.count }
            for mount in mounts { umount2(mount, Int32(MNT_DETACH)) }
            try? FileManager.default.removeItem(atPath: base)
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// True when `pid` exists and is not a zombie (a killed process whose parent has not reaped it yet
/// holds no namespace, mount or file any more).
func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(after: close)...].split(separator: " ").first
    return state != "Z" && state != "X"
}

/// The inode link of a namespace of a process, e.g. `net:[4026531840]`.
func namespaceLink(pid: Int32, _ kind: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(kind)")
}
