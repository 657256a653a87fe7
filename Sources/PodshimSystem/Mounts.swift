import CShims
import Foundation
import Glibc

/// Mount operations in podshim's own (host) mount namespace, and the mount table.
public enum Mounts {
    /// Mounts a tmpfs at `target` with `options` (e.g. `mode=1777,size=65536k`).
    public static func mountTmpfs(at target: String, options: String) throws(SystemError) {
        let flags = psh_ms_nosuid | psh_ms_nodev | psh_ms_noexec
        try systemCall("mount tmpfs", path: target) { psh_mount("tmpfs", target, "tmpfs", flags, options) }
    }

    /// Lazily unmounts `target`. Not mounted (EINVAL) or missing (ENOENT) is not an error.
    public static func unmount(_ target: String) throws(SystemError) {
        let result = psh_umount(target, true)
        if result == 0 || result == -EINVAL || result == -ENOENT { return }
        throw SystemError("umount", path: target, negatedErrno: result)
    }

    /// Whether `path` is the root of a mount (a mount point, or a bind-mounted file); nil when the
    /// kernel does not say (before 5.8) or `path` cannot be examined.
    public static func isMountRoot(_ path: String) -> Bool? {
        let result = psh_is_mount_root(path)
        return result < 0 ? nil : result == 1
    }

    /// Whether this kernel reports mount roots (``isMountRoot(_:)``); asked once.
    public static let reportsMountRoots: Bool = psh_is_mount_root("/") != -ENOSYS

    /// Mount points in this mount namespace at `directory` or below it, deepest first.
    ///
    /// Every tree removal asks this, and a host with 1,000 pods has thousands of mounts: the scan
    /// compares bytes of field 5 against the escaped directory and makes a `String` only of the
    /// lines that match (parsing every line into Strings made pod removal quadratic in its CPU).
    public static func mountPoints(under directory: String) -> [String] {
        let base = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        guard var text = try? FileSystem.readKernelFile("/proc/self/mountinfo") else { return [] }  // unreadable: as mountTable
        let exact = escapeMountPath(base)
        let prefix = exact == [UInt8(ascii: "/")] ? exact : exact + [UInt8(ascii: "/")]
        var found: [String] = []
        text.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                var end = index
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                // Field 5 (the mount point) starts after the fourth space.
                var field = index
                var spaces = 0
                while field < end && spaces < 4 {
                    if bytes[field] == UInt8(ascii: " ") { spaces += 1 }
                    field += 1
                }
                if spaces == 4 {
                    var fieldEnd = field
                    while fieldEnd < end && bytes[fieldEnd] != UInt8(ascii: " ") { fieldEnd += 1 }
                    let point = UnsafeBufferPointer(rebasing: bytes[field..<fieldEnd])
                    if point.elementsEqual(exact) || (point.count > prefix.count && point.starts(with: prefix))
                        || (prefix == exact && point.starts(with: prefix)) {
                        found.append(unescapeMountPath(String(decoding: point, as: UTF8.self)))
                    }
                }
                index = end + 1
            }
        }
        return found.sorted { $0.count > $1.count }
    }

    /// `path` as mountinfo writes it: space, tab, newline and backslash as octal escapes.
    static func escapeMountPath(_ path: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\\"):
                let octal = String(byte, radix: 8)
                bytes.append(UInt8(ascii: "\\"))
                bytes += Array((String(repeating: "0", count: 3 - octal.count) + octal).utf8)
            default:
                bytes.append(byte)
            }
        }
        return bytes
    }

    /// Every mount point of this process's mount namespace (field 5 of /proc/self/mountinfo).
    public static func mountTable() -> [String] {
        // Unreadable: nothing unmounted first, and removing a mount point then fails (EBUSY) and says so.
        guard let text = try? FileSystem.readKernelFile("/proc/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            return fields.count > 4 ? unescapeMountPath(String(fields[4])) : nil
        }
    }

    /// mountinfo escapes space, tab, newline and backslash as octal `\040`.
    public static func unescapeMountPath(_ field: String) -> String {
        guard field.utf8.contains(UInt8(ascii: "\\")) else { return field }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The propagation of the mount that holds a path, from /proc/self/mountinfo.
public enum MountInfo {
    public struct Propagation: Equatable, Sendable {
        /// The mount point that holds the path.
        public var mountPoint: String
        /// `shared:N`: in a peer group.
        public var shared: Bool
        /// `master:N`: receives from a peer group.
        public var slave: Bool
    }

    /// The mount holding `path` (symlinks resolved): the last-mounted entry whose mount point is
    /// the longest prefix. Nil when the path does not resolve.
    public static func propagation(of path: String) -> Propagation? {
        guard let resolved = FileSystem.resolved(path) else { return nil }
        // Unreadable: nil, and the caller refuses, naming mountinfo.
        guard let text = try? FileSystem.readKernelFile("/proc/self/mountinfo") else { return nil }
        return propagation(of: resolved, mountinfo: text)
    }

    /// Pure: `resolved` is an absolute path without symlinks.
    public static func propagation(of resolved: String, mountinfo text: String) -> Propagation? {
        var best: Propagation?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > 6, let separator = fields.firstIndex(of: "-") else { continue }
            let mountPoint = Mounts.unescapeMountPath(fields[4])
            let prefix = mountPoint == "/" ? "/" : mountPoint + "/"
            guard resolved == mountPoint || resolved.hasPrefix(prefix) else { continue }
            // Later lines are mounted on top: on a tie the later one wins.
            if let best, best.mountPoint.count > mountPoint.count { continue }
            let optional = fields[6..<separator]
            best = Propagation(mountPoint: mountPoint,
                               shared: optional.contains { $0.hasPrefix("shared:") },
                               slave: optional.contains { $0.hasPrefix("master:") })
        }
        return best
    }
}
