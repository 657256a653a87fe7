import CShims
import SystemPackage
import Foundation
import Glibc

/// File helpers that report failures as ``SystemError`` with the path.
public enum FileSystem {
    /// `mkdir -p` with `mode` for every directory created.
    public static func createDirectory(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true,
                attributes: [.posixPermissions: NSNumber(value: mode)])
        } catch {
            throw SystemError("mkdir", path: path, errno: errnoOf(error))
        }
    }

    /// Writes `contents` to `path` atomically and durably: a temporary file in the same directory,
    /// fsync, rename, then fsync of the directory (without it the rename may not survive a crash).
    /// `durable: false` skips both fsyncs: still atomic for readers and across a crash of podshim
    /// (the page cache outlives the process), for files that are regenerated anyway.
    /// Concurrent writers of one path each use their own temporary file; the last rename wins.
    public static func writeAtomically(_ path: String, _ contents: String, mode: mode_t = 0o644,
                                       durable: Bool = true) throws(SystemError) {
        let temporary = path + ".tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = try libcCall("open", path: temporary) { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode) }
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlink(temporary) }
        }
        var bytes = Array(contents.utf8)[...]
        while !bytes.isEmpty {
            let written = try libcCall("write", path: temporary) {
                bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
            bytes = bytes.dropFirst(written)
        }
        if durable { try libcCall("fsync", path: temporary) { fsync(fd) } }
        try libcCall("rename", path: path) { rename(temporary, path) }
        renamed = true
        guard durable else { return }
        let directory = (path as NSString).deletingLastPathComponent
        let directoryFD = try libcCall("open", path: directory) { open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(directoryFD) }
        try libcCall("fsync", path: directory) { fsync(directoryFD) }
    }

    /// fsync of the directory `path`: makes renames and new names in it durable.
    public static func syncDirectory(_ path: String) throws(SystemError) {
        let fd = try libcCall("open", path: path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        try libcCall("fsync", path: path) { fsync(fd) }
    }

    /// An O_PATH descriptor of `relative` inside `root`, resolved by the kernel without ever
    /// leaving `root` (openat2 RESOLVE_BENEATH, no magic links): a symlink swapped in at any moment
    /// cannot redirect it. Missing directories are created on the way (mkdirat beneath `root`)
    /// when `createDirectories`. Mounting `/proc/self/fd/<fd>` then mounts that very object.
    public static func openBeneath(_ root: String, _ relative: String, createDirectories: Bool) throws(SystemError) -> Int32 {
        let rootFD = try libcCall("open", path: root) { open(root, psh_o_path | O_DIRECTORY | O_CLOEXEC) }
        defer { close(rootFD) }
        let resolve = psh_resolve_beneath | psh_resolve_no_magiclinks
        let flags = UInt64(psh_o_path | O_CLOEXEC)
        let first = psh_openat2(rootFD, relative, flags, 0, resolve)
        if first >= 0 { return first }
        guard first == -ENOENT, createDirectories else {
            throw SystemError("openat2 (beneath \(root))", path: relative, negatedErrno: first)
        }
        var parent = try systemCall("dup", path: root) { Int32(fcntl(rootFD, F_DUPFD_CLOEXEC, 0)) }
        for component in relative.split(separator: "/").map(String.init) where component != "." {
            var next = psh_openat2(parent, component, flags | UInt64(O_DIRECTORY), 0, resolve)
            if next == -ENOENT {
                if mkdirat(parent, component, 0o755) != 0 && errno != EEXIST {
                    let error = SystemError("mkdirat (beneath \(root))", path: component, errno: .last)
                    close(parent)
                    throw error
                }
                next = psh_openat2(parent, component, flags | UInt64(O_DIRECTORY), 0, resolve)
            }
            close(parent)
            guard next >= 0 else { throw SystemError("openat2 (beneath \(root))", path: relative, negatedErrno: next) }
            parent = next
        }
        return parent
    }

    /// ``openBeneath(_:_:createDirectories:)`` (creating missing directories), then a detached
    /// clone of the mount of what it opened (open_tree OPEN_TREE_CLONE), ready for move_mount.
    public static func cloneMountBeneath(_ root: String, _ relative: String, recursive: Bool) throws(SystemError) -> Int32 {
        let fd = try openBeneath(root, relative, createDirectories: true)
        defer { close(fd) }
        return try systemCall("open_tree", path: root + "/" + relative) { psh_open_tree_clone(fd, recursive) }
    }

    /// `path` with every symlink resolved, or nil when it does not resolve.
    public static func resolved(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    /// Where `path` really is when that is `root` itself or below it (symlinks resolved in both);
    /// nil when either does not resolve or `path` leads out of `root`.
    public static func resolved(_ path: String, inside root: String) -> String? {
        guard let resolvedRoot = resolved(root), let resolvedPath = resolved(path) else { return nil }
        return resolvedPath == resolvedRoot || resolvedPath.hasPrefix(resolvedRoot + "/") ? resolvedPath : nil
    }

    /// Bytes allocated and inodes used by the tree at `path`, on its own filesystem only (what
    /// `du -s --one-file-system` and `find | wc -l` count). Nil when `path` cannot be read.
    public static func usage(of path: String) -> (bytes: UInt64, inodes: UInt64)? {
        var root = stat()
        guard lstat(path, &root) == 0 else { return nil }
        var bytes: UInt64 = 0, inodes: UInt64 = 0
        var pending = [path]
        while let directory = pending.popLast() {
            guard let handle = opendir(directory) else { continue }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name == "." || name == ".." { continue }
                let child = directory + "/" + name
                var info = stat()
                guard lstat(child, &info) == 0, info.st_dev == root.st_dev else { continue }
                bytes += UInt64(max(0, info.st_blocks)) * 512
                inodes += 1
                if (info.st_mode & S_IFMT) == S_IFDIR { pending.append(child) }
            }
        }
        return (bytes + UInt64(max(0, root.st_blocks)) * 512, inodes + 1)
    }

    /// Writes `contents` into an existing file in place (a /proc or /sys knob): one write call.
    /// The whole text of a kernel file (/proc, /sys), read until EOF. Foundation's
    /// `String(contentsOfFile:)` trusts the size stat reports, 0 for these, and returns only the
    /// first page: a node's /proc/self/mountinfo is longer than that.
    public static func readKernelFile(_ path: String) throws(SystemError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: .last) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path: path, errno: .last)
            }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func writeFile(_ path: String, _ contents: String) throws(SystemError) {
        let fd = try libcCall("open", path: path) { open(path, O_WRONLY | O_CLOEXEC) }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        _ = try libcCall("write", path: path) { bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
    }

    /// Removes `path` and everything below it, after unmounting anything mounted there, and never
    /// crossing into another filesystem (like `rm -rf --one-file-system`). Missing is fine.
    ///
    /// Mounts are found on the way down: an entry that is the root of a mount (statx's
    /// STATX_ATTR_MOUNT_ROOT, which also sees bind mounts within one filesystem and bind-mounted
    /// files) is detached before it is entered or unlinked. Reading /proc/self/mountinfo instead
    /// costs O(mounts on the host) per removal, which made removing N pods O(N²) in the kernel;
    /// only a kernel that does not report mount roots (before 5.8) still scans it.
    public static func removeTree(_ path: String) throws(SystemError) {
        if !Mounts.reportsMountRoots {
            for mountPoint in Mounts.mountPoints(under: path) {
                try Mounts.unmount(mountPoint)
            }
        }
        try detachMounts(at: path)
        var root = stat()
        guard lstat(path, &root) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("lstat", path: path, errno: .last)
        }
        try removeEntry(path, device: root.st_dev)
    }

    private static func removeEntry(_ path: String, device: dev_t) throws(SystemError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("lstat", path: path, errno: .last)
        }
        if Mounts.isMountRoot(path) == true {
            try detachMounts(at: path)
            guard lstat(path, &info) == 0 else {
                if errno == ENOENT { return }
                throw SystemError("lstat", path: path, errno: .last)
            }
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if info.st_dev != device {
                // A mount the mountinfo scan missed: /proc/self/mountinfo is not read atomically,
                // and concurrent unmounts elsewhere can make a reader skip entries. Detach it.
                try Mounts.unmount(path)
                guard lstat(path, &info) == 0, info.st_dev == device else {
                    throw SystemError("remove (another filesystem is mounted here)", path: path, errno: .resourceBusy)
                }
            }
            let children: [String]
            do {
                children = try FileManager.default.contentsOfDirectory(atPath: path)
            } catch {
                throw SystemError("readdir", path: path, errno: errnoOf(error))
            }
            for child in children {
                try removeEntry(path + "/" + child, device: device)
            }
            try libcCall("rmdir", path: path) { rmdir(path) }
        } else {
            try libcCall("unlink", path: path) { unlink(path) }
        }
    }

    /// Detaches whatever is mounted at `path`, stacked mounts included (bounded: a mount that
    /// will not go is reported by the removal that follows).
    private static func detachMounts(at path: String) throws(SystemError) {
        var attempts = 0
        while Mounts.isMountRoot(path) == true && attempts < 16 {
            try Mounts.unmount(path)
            attempts += 1
        }
    }

    private static func errnoOf(_ error: Error) -> Errno {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Errno(rawValue: Int32(underlying.code))
        }
        if nsError.domain == NSPOSIXErrorDomain { return Errno(rawValue: Int32(nsError.code)) }
        switch nsError.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return .noSuchFileOrDirectory
        case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return .permissionDenied
        case NSFileWriteOutOfSpaceError: return .noSpace
        default: return .ioError
        }
    }
}
