import Foundation
import Glibc
import PodshimSystem

/// One cgroup v2 directory. Every write names the file and the path on failure:
/// `write cpu.max /sys/fs/cgroup/podshim/pod-x/container-a: EINVAL`.
public struct Cgroup: Equatable, Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public func child(_ name: String) -> Cgroup { Cgroup(path: path + "/" + name) }

    public var exists: Bool { access(path, F_OK) == 0 }

    /// Creates the directory (and missing parents). Existing is fine.
    public func create() throws(SystemError) {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        if errno == ENOENT {
            try Cgroup(path: (path as NSString).deletingLastPathComponent).create()
            if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        }
        throw SystemError("mkdir", path: path, errno: .last)
    }

    public func write(_ file: String, _ value: String) throws(SystemError) {
        let target = path + "/" + file
        let fd = try libcCall("open \(file)", path: path) { open(target, O_WRONLY | O_TRUNC | O_CLOEXEC) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        try libcCall("write \(file)", path: path) { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
    }

    /// The whole file; an error names the file and the cgroup (`open memory.peak /sys/fs/…: ENOENT`).
    public func read(_ file: String) throws(SystemError) -> String {
        do {
            return try FileSystem.readKernelFile(path + "/" + file)
        } catch {
            throw SystemError("\(error.operation) \(file)", path: path, errno: error.errno)
        }
    }

    /// `cgroup.controllers`: what this cgroup may enable for its children.
    public func availableControllers() -> Set<String> {
        // A missing cgroup (or one already gone) has no controllers; an existing one always has this file.
        Set(((try? read("cgroup.controllers")) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
    }

    /// Enables `controllers` for the children (`cgroup.subtree_control`), each on its own so that
    /// one the kernel refuses does not hide the others. Returns the enabled set.
    @discardableResult
    public func enableControllers(_ controllers: [String]) throws(SystemError) -> Set<String> {
        let available = availableControllers()
        let wanted = controllers.filter(available.contains)
        // Unreadable: every wanted controller is written again, which is harmless; a refusal is thrown.
        let enabled = Set(((try? read("cgroup.subtree_control")) ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        for controller in wanted where !enabled.contains(controller) {
            try write("cgroup.subtree_control", "+" + controller)
        }
        return Set(wanted)
    }

    /// A `key value` file (cpu.stat, memory.events, cgroup.events) as a dictionary.
    public func keyedValues(_ file: String) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in ((try? read(file)) ?? "").split(separator: "\n") { // a controller not enabled here, or a cgroup already gone: no values
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = Int64(fields[1]) { values[String(fields[0])] = value }
        }
        return values
    }

    /// A file holding one number (memory.current, memory.peak), or nil.
    public func number(_ file: String) -> Int64? {
        // Missing (controller not enabled, cgroup gone): nil, as documented.
        (try? read(file)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Whether any process lives in this cgroup or below (`cgroup.events` populated).
    public var isPopulated: Bool { keyedValues("cgroup.events")["populated"] == 1 }

    /// SIGKILLs every process in this cgroup and below (`cgroup.kill`, Linux ≥ 5.14), including
    /// processes that escaped the container's init. Returns false when the kernel has no cgroup.kill.
    @discardableResult
    public func killAll() throws(SystemError) -> Bool {
        guard access(path + "/cgroup.kill", F_OK) == 0 else { return false }
        try write("cgroup.kill", "1")
        return true
    }

    /// An fd for clone3(CLONE_INTO_CGROUP). The caller closes it.
    public func openDirectory() throws(SystemError) -> Int32 {
        try libcCall("open", path: path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }

    /// Moves `pid` into this cgroup (the fallback when CLONE_INTO_CGROUP is unavailable).
    public func add(pid: pid_t) throws(SystemError) {
        try write("cgroup.procs", String(pid))
    }

    /// Removes this cgroup and its children, deepest first, killing what still runs and waiting
    /// (up to `timeoutSeconds`) for it to be gone. Missing is fine.
    public func remove(timeoutSeconds: Double = 5) throws(SystemError) {
        guard exists else { return }
        // Children left unlisted make the rmdir below fail (EBUSY), which is thrown at the deadline.
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { name in
            var info = stat()
            return stat(path + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        for name in children { try child(name).remove(timeoutSeconds: timeoutSeconds) }
        let deadline = MonotonicInstant.now().advanced(bySeconds: timeoutSeconds)
        var killed = false
        while true {
            if rmdir(path) == 0 || errno == ENOENT { return }
            let error = Errno.last
            guard error == .resourceBusy else { throw SystemError("rmdir", path: path, errno: error) }
            if !killed { _ = try? killAll(); killed = true } // a refused cgroup.kill keeps it busy: the rmdir error is thrown at the deadline
            if MonotonicInstant.now() > deadline { throw SystemError("rmdir", path: path, errno: error) }
            usleep(5_000)
        }
    }
}
