import Foundation
import Glibc
import PodshimRuntime
import PodshimSystem
import PodshimProcess

/// What the daemon keeps about a sandbox, written atomically on every change so that a restarted
/// daemon (even after SIGKILL) finds every pod it ran. The CRI config is kept as protobuf JSON:
/// the pod model is derived from it again, by the same translation, on re-adoption.
struct SandboxRecord: Codable, Equatable, Sendable {
    var id: String
    /// `Runtime_V1_PodSandboxConfig` in protobuf's JSON mapping.
    var config: String
    /// Nanoseconds since the epoch.
    var createdAt: Int64
    var ready: Bool
    /// The pause process, once it was cloned.
    var pause: ProcessIdentity?
    /// The pod cgroup, when there is one.
    var cgroup: String?
    /// StopPodSandbox began (a restarted daemon finishes it).
    var stopping: Bool?
    /// RunPodSandbox began and has not finished: a restarted daemon rolls it back (kills the
    /// pause process, removes the cgroups, mounts, directories and the record).
    var creating: Bool?
    /// The pod's IPs from CNI, the first IPv4 first (PodSandboxStatus.network).
    var ips: [String]?
}

/// What the daemon keeps about a container.
struct ContainerRecord: Codable, Equatable, Sendable {
    enum State: String, Codable, Sendable {
        case created, running, exited
    }

    var id: String
    var sandboxID: String
    /// `Runtime_V1_ContainerConfig` in protobuf's JSON mapping.
    var config: String
    /// The image as the config named it, and the image id it resolved to.
    var image: String
    var imageRef: String
    /// The image's first reference and repository digest when the container was created (fully
    /// qualified), reported as ContainerStatus `image` and `image_ref` as containerd does.
    var imageRepoTag: String?
    var imageRepoDigest: String?
    var logPath: String
    var state: State
    var createdAt: Int64
    var startedAt: Int64 = 0
    var finishedAt: Int64 = 0
    var process: ProcessIdentity?
    var exitCode: Int32 = 0
    var reason: String = ""
    var message: String = ""
    /// A stop began with this grace period (seconds), at `stopRequestedAt` (ns since the epoch):
    /// a daemon restarted during the stop runs it again with the full grace period.
    var stopGraceSeconds: Int64?
    var stopRequestedAt: Int64?
    /// The resources of the last UpdateContainerResources (protobuf JSON); nil = the config's.
    var resources: String?
    /// StartContainer began and has not been recorded as done: a restarted daemon completes it
    /// (the process runs: adopted) or rolls it back (nothing runs any more).
    var starting: Bool?
    /// The fds the pod's pause process holds for the running attempt: its pidfd first, then the
    /// read ends of its output pipes (see `FDKeeper`).
    var keeperFDs: [Int32]?
}

/// The daemon's record files: `<state>/cri/sandboxes/<id>.json` and `<state>/cri/containers/<id>.json`.
///
/// Each record is written durably: a temporary file, fsync, rename over the record, fsync of the
/// directory, so that an intent recorded before a step (RunPodSandbox's `creating`,
/// StartContainer's `starting`) is on disk before the step creates anything. On the usual tmpfs
/// state directory (`/run/podshim`) an fsync costs nothing; on a disk it costs what the disk
/// takes (6.7 ms here). A temporary file left by a daemon killed mid-write is removed at start-up.
struct StateStore: Sendable {
    let directory: String

    init(stateDirectory: String) {
        directory = stateDirectory + "/cri"
    }

    var sandboxDirectory: String { directory + "/sandboxes" }
    var containerDirectory: String { directory + "/containers" }

    /// Creates the directories and removes temporary files a killed daemon left mid-write.
    func prepare() throws {
        try FileSystem.createDirectory(directory, mode: 0o700)
        try FileSystem.createDirectory(sandboxDirectory, mode: 0o700)
        try FileSystem.createDirectory(containerDirectory, mode: 0o700)
        for directory in [sandboxDirectory, containerDirectory] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] // just created: listable
            for name in names where name.contains(".json.tmp.") { unlink(directory + "/" + name) }
        }
    }

    func save(_ record: SandboxRecord) throws {
        try write(record, to: sandboxDirectory + "/" + record.id + ".json")
    }

    func save(_ record: ContainerRecord) throws {
        try write(record, to: containerDirectory + "/" + record.id + ".json")
    }

    func deleteSandbox(_ id: String) {
        unlink(sandboxDirectory + "/" + id + ".json")
    }

    func deleteContainer(_ id: String) {
        unlink(containerDirectory + "/" + id + ".json")
    }

    /// Every readable record; unreadable files are reported and skipped, never fatal.
    func loadSandboxes() -> (records: [SandboxRecord], problems: [String]) {
        load(sandboxDirectory)
    }

    func loadContainers() -> (records: [ContainerRecord], problems: [String]) {
        load(containerDirectory)
    }

    private func write<Record: Encodable>(_ record: Record, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(record)
        try FileSystem.writeAtomically(path, String(decoding: data, as: UTF8.self), mode: 0o600, durable: true)
    }

    private func load<Record: Decodable>(_ directory: String) -> (records: [Record], problems: [String]) {
        var records: [Record] = []
        var problems: [String] = []
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            problems.append("cannot list records in \(directory): \(error)")
            names = []
        }
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = directory + "/" + name
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                records.append(try JSONDecoder().decode(Record.self, from: data))
            } catch {
                problems.append("unreadable record \(path): \(error)")
            }
        }
        return (records, problems)
    }
}
