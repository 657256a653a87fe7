import Glibc

/// Walks a directory tree with `lstat`: symbolic links are not followed and directories of other
/// file systems (mount points) are not entered. Entries that vanish or cannot be read mid-walk are
/// skipped; sizes are for reporting, not for security decisions.
enum FileTree {
    /// One entry below the root: its path relative to the root (`etc/hostname`) and its `lstat`.
    typealias Visitor = (_ relativePath: String, _ info: stat) -> Void

    /// Calls `visit` for every entry below `root` (not for `root` itself), parents before children,
    /// siblings in byte order of their names. Returns false when `root` cannot be `lstat`ed.
    @discardableResult
    static func walk(_ root: String, visit: Visitor) -> Bool {
        var info = stat()
        guard lstat(root, &info) == 0 else { return false }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return true }
        walkDirectory(root, relative: "", device: info.st_dev, visit: visit)
        return true
    }

    private static func walkDirectory(_ path: String, relative: String, device: dev_t, visit: Visitor) {
        for name in entries(of: path) {
            let full = path + "/" + name
            let relativePath = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR && info.st_dev != device { continue }
            visit(relativePath, info)
            if (info.st_mode & S_IFMT) == S_IFDIR {
                walkDirectory(full, relative: relativePath, device: device, visit: visit)
            }
        }
    }

    /// The names in directory `path` other than `.` and `..`, sorted; empty when it cannot be read.
    static func entries(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The bytes of an image root filesystem: sizes of its regular files and symbolic links
    /// (directory sizes depend on the file system, so they are left out), each hard-linked file
    /// once (a busybox image is one binary under 400 names).
    static func contentSize(of root: String) -> UInt64 {
        var total: UInt64 = 0
        var seen = Set<UInt64>()
        walk(root) { _, info in
            let type = info.st_mode & S_IFMT
            if type == S_IFREG && info.st_nlink > 1 && !seen.insert(UInt64(info.st_ino)).inserted { return }
            if type == S_IFREG || type == S_IFLNK { total += UInt64(max(info.st_size, 0)) }
        }
        return total
    }

    /// Disk use of everything at and below `root`, as `du` counts it: allocated bytes and inodes,
    /// each hard-linked inode once.
    static func usage(of root: String) -> (bytes: UInt64, inodes: UInt64) {
        var info = stat()
        guard lstat(root, &info) == 0 else { return (0, 0) }
        var bytes = UInt64(max(info.st_blocks, 0)) * 512
        var inodes: UInt64 = 1
        var seen = Set<UInt64>()
        walk(root) { _, entry in
            if entry.st_nlink > 1 && (entry.st_mode & S_IFMT) != S_IFDIR {
                guard seen.insert(UInt64(entry.st_ino)).inserted else { return }
            }
            bytes += UInt64(max(entry.st_blocks, 0)) * 512
            inodes += 1
        }
        return (bytes, inodes)
    }
}
