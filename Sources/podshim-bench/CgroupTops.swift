#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The run's `cgroup_parent` directories, `<hierarchy>/podshim-bench-<run>/pod<uid>`: the
/// runtimes make them in every hierarchy they use (each cgroup v1 controller's, the unified one)
/// and, as under a kubelet, leave them; the bench removes them once its pods are gone.
enum CgroupTops {
    /// The mount points of the cgroup and cgroup2 file systems in a /proc/self/mountinfo text.
    static func mounts(mountinfo text: String) -> [String] {
        var out: [String] = []
        for line in text.split(separator: "\n") {
            // "<id> <parent> <dev> <root> <mount point> <options> [optional…] - <fstype> <source> <super options>"
            guard let dash = line.range(of: " - ") else { continue }
            let fstype = line[dash.upperBound...].split(separator: " ").first
            guard fstype == "cgroup" || fstype == "cgroup2" else { continue }
            let fields = line[..<dash.lowerBound].split(separator: " ")
            guard fields.count > 4 else { continue }
            out.append(unescape(fields[4]))
        }
        return out
    }

    /// Whether `top` is a directory name of a bench run's, and nothing else: `/podshim-bench-<id>`.
    static func isRunTop(_ top: String) -> Bool {
        let prefix = "/podshim-bench-"
        guard top.hasPrefix(prefix) else { return false }
        return BenchSpec.validRunID(String(top.dropFirst(prefix.count)))
    }

    /// Removes `<mount>/<top>` and every directory under it in every cgroup hierarchy (rmdir,
    /// deepest first, retried for 2 s: a cgroup whose last process just exited can be busy for a
    /// moment). Only a run's own `top`. Returns the directories left.
    static func remove(top: String, mountinfo: String? = nil) -> [String] {
        guard isRunTop(top), let text = mountinfo ?? ProcSnapshot.readFile("/proc/self/mountinfo") else { return [] }
        var left: [String] = []
        for mount in mounts(mountinfo: text) {
            let root = mount + top
            guard isDirectory(root) else { continue }
            var dirs = directories(under: root)
            for attempt in 0..<20 {
                if attempt > 0 { usleep(100_000) }
                dirs = dirs.filter { rmdir($0) != 0 && errno != ENOENT }
                if dirs.isEmpty { break }
            }
            left += dirs
        }
        return left
    }

    /// `root` and the directories under it, deepest first (children before their parent).
    static func directories(under root: String) -> [String] {
        var out: [String] = []
        func walk(_ path: String) {
            guard let dir = opendir(path) else { return }
            var children: [String] = []
            while let entry = readdir(dir) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name != "." && name != ".." { children.append(path + "/" + name) }
            }
            closedir(dir)
            for child in children { walk(child) }
            out.append(path)
        }
        walk(root)
        return out
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mountinfo's octal escapes (`\040` for a space).
    private static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
