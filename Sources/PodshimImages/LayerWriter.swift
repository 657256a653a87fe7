import Glibc
import PodshimSystem

/// Calls `body` (a system call) with `bytes` as a NUL-terminated C string; errno survives.
func withCPath<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    var terminated = bytes
    terminated.append(0)
    var saved: Int32 = 0
    let result = terminated.withUnsafeBufferPointer { buffer in
        let result = buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
        saved = errno
        return result
    }
    errno = saved
    return result
}

/// The state of one ``LayerApplier/apply(_:into:expectedDigest:expectedDiffID:options:)``: the
/// root, a cached parent directory, the directories whose mode and times come last.
final class LayerWriter {
    /// How every parent is resolved from the root: never out of it, never through a link.
    static let beneath: LayerSyscalls.Resolve = [.beneath, .noSymlinks, .noMagicLinks, .noXDev]
    static let maxNotes = 20

    private struct DeferredDirectory {
        var depth: Int
        var inode: ino_t
        var mode: UInt32
        var times: [timespec]
    }

    let rootFD: Int32
    let options: LayerApplier.Options
    private(set) var hasRootEntry = false
    private(set) var skippedDevices = 0
    private(set) var droppedXattrs = 0
    private(set) var notes: [String] = []
    /// The last parent opened (a path below the root, joined with `/`) and its fd.
    private var cached: (path: [UInt8], fd: Int32)?
    private var deferred: [[UInt8]: DeferredDirectory] = [:]
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 << 10, alignment: 16)

    init(rootFD: Int32, options: LayerApplier.Options) {
        self.rootFD = rootFD
        self.options = options
    }

    deinit { buffer.deallocate() }

    func close() {
        if let cached { Glibc.close(cached.fd) }
        cached = nil
    }

    // MARK: One member

    func apply<Input>(_ entry: TarEntry, reader: inout TarReader<Input>) throws(LayerError) {
        let member = entry.displayName
        let components: [[UInt8]]
        switch LayerApplier.clean(entry.name) {
        case .success(let cleaned): components = cleaned
        case .failure(let error): throw .unsafeMember(member: member, reason: error.reason)
        }
        if components.dropLast().contains(where: LayerApplier.isWhiteout) {
            throw .unsafeMember(member: member, reason: "a whiteout name (.wh.) is used as a directory")
        }
        for (what, id) in [("uid", entry.uid), ("gid", entry.gid)] where !(0..<Int64(UInt32.max)).contains(id) {
            throw .unsupportedMember(member: member, reason: "\(what) \(id) is out of range")
        }
        guard let base = components.last else {
            try applyRoot(entry, member: member)
            return
        }
        let parentPath = Array(components.dropLast())
        if LayerApplier.isWhiteout(base) {
            try applyWhiteout(entry, parentPath: parentPath, base: base, member: member)
            return
        }
        let path = Self.join(components)
        let parent = try parentDirectory(parentPath, member: member)
        let existing = try status(parent, base, member: member)
        if entry.kind == .directory, let existing, Self.isDirectory(existing) {
            try applyDirectory(entry, parent: parent, base: base, path: path, depth: components.count,
                               opaque: false, member: member)
            return
        }
        // A hard link's target is checked before anything is removed: it may be this very path.
        let linkTarget = entry.kind == .hardLink ? try checkLinkTarget(entry, path: path, member: member) : nil
        defer { if let linkTarget { Glibc.close(linkTarget.parent) } }
        var replacedWhiteout = false
        if let existing {
            replacedWhiteout = Self.isWhiteoutDevice(existing)
            try remove(parent, base, path: path, isDirectory: Self.isDirectory(existing), member: member)
        }
        switch entry.kind {
        case .regular:
            try writeFile(entry, parent: parent, base: base, path: path, member: member, reader: &reader)
        case .directory:
            try call("mkdirat", member, path) { withCPath(base) { mkdirat(parent, $0, 0o700) } }
            // A directory where this layer whited out a lower one: the lower one's children must not show.
            try applyDirectory(entry, parent: parent, base: base, path: path, depth: components.count,
                               opaque: replacedWhiteout, member: member)
        case .symbolicLink:
            try call("symlinkat", member, path) {
                withCPath(entry.linkName) { target in withCPath(base) { symlinkat(target, parent, $0) } }
            }
            try setOwnerAndTimes(entry, parent: parent, base: base, path: path, setMode: false, member: member)
            dropXattrs(entry, member: member, kind: "a symbolic link")
        case .hardLink:
            try link(linkTarget!, parent: parent, base: base, path: path, member: member)
        case .characterDevice, .blockDevice, .fifo:
            try makeNode(entry, parent: parent, base: base, path: path, member: member)
        }
    }

    /// Directories' modes and times, deepest first (so that a parent's mode never stops the walk
    /// to its children); a directory replaced since is skipped.
    func finish() throws(LayerError) {
        close()
        for (path, record) in deferred.sorted(by: { $0.value.depth > $1.value.depth }) {
            let member = path.isEmpty ? "." : LayerError.display(path)
            let fd: Int32
            if path.isEmpty {
                fd = try call("dup", member, nil) { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
            } else {
                fd = withCPath(path) {
                    LayerSyscalls.openat2(rootFD, $0, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, resolve: Self.beneath)
                }
                if fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP { continue }  // replaced by a later member
                guard fd >= 0 else { throw parentError(fd, path: path, member: member) }
            }
            defer { Glibc.close(fd) }
            var info = stat()
            try call("fstat", member, path) { fstat(fd, &info) }
            guard info.st_ino == record.inode else { continue }
            try call("fchmod", member, path) { fchmod(fd, mode_t(record.mode)) }
            try call("futimens", member, path) { futimens(fd, record.times) }
        }
    }

    // MARK: Kinds

    private func applyRoot(_ entry: TarEntry, member: String) throws(LayerError) {
        guard entry.kind == .directory else {
            throw .unsafeMember(member: member, reason: "it would replace the layer directory with a non-directory")
        }
        hasRootEntry = true
        try setDirectoryMetadata(entry, fd: rootFD, path: [], depth: 0, member: member)
    }

    private func applyDirectory(_ entry: TarEntry, parent: Int32, base: [UInt8], path: [UInt8], depth: Int,
                                opaque: Bool, member: String) throws(LayerError) {
        let fd = try call("openat", member, path) {
            withCPath(base) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        defer { Glibc.close(fd) }
        if opaque { try setOpaque(fd, path: path, member: member) }
        try setDirectoryMetadata(entry, fd: fd, path: path, depth: depth, member: member)
    }

    /// Owner and xattrs now; mode and times in ``finish()``.
    private func setDirectoryMetadata(_ entry: TarEntry, fd: Int32, path: [UInt8], depth: Int,
                                      member: String) throws(LayerError) {
        if options.privileged {
            try call("fchown", member, path) { fchown(fd, uid_t(entry.uid), gid_t(entry.gid)) }
        }
        try setXattrs(entry, fd: fd, path: path, member: member)
        var info = stat()
        try call("fstat", member, path) { fstat(fd, &info) }
        deferred[path] = DeferredDirectory(depth: depth, inode: info.st_ino, mode: entry.mode, times: Self.times(entry))
    }

    private func writeFile<Input>(_ entry: TarEntry, parent: Int32, base: [UInt8], path: [UInt8], member: String,
                                  reader: inout TarReader<Input>) throws(LayerError) {
        let fd = try call("openat", member, path) {
            withCPath(base) { openat(parent, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
        }
        defer { Glibc.close(fd) }
        while true {
            let count = try reader.readData(into: buffer)
            if count == 0 { break }
            var written = 0
            while written < count {
                let result = Glibc.write(fd, buffer.baseAddress! + written, count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    throw .system(member: member, SystemError("write", path: LayerError.display(path), errno: .last))
                }
                written += result
            }
        }
        if options.privileged {
            try call("fchown", member, path) { fchown(fd, uid_t(entry.uid), gid_t(entry.gid)) }
        }
        try call("fchmod", member, path) { fchmod(fd, mode_t(entry.mode)) }
        // After the chown, which clears security.capability.
        try setXattrs(entry, fd: fd, path: path, member: member)
        try call("futimens", member, path) { futimens(fd, Self.times(entry)) }
    }

    private func makeNode(_ entry: TarEntry, parent: Int32, base: [UInt8], path: [UInt8], member: String) throws(LayerError) {
        let type: mode_t
        switch entry.kind {
        case .characterDevice: type = S_IFCHR
        case .blockDevice: type = S_IFBLK
        default: type = S_IFIFO
        }
        let device = type == S_IFIFO ? 0 : LayerSyscalls.makeDevice(major: entry.deviceMajor, minor: entry.deviceMinor)
        if type != S_IFIFO && !options.privileged {
            skipDevice(member, because: "not root")
            return
        }
        let made = withCPath(base) { mknodat(parent, $0, type | 0o600, device) }
        if made != 0 {
            if errno == EPERM && type != S_IFIFO {
                skipDevice(member, because: "mknod: EPERM")
                return
            }
            throw .system(member: member, SystemError("mknodat", path: LayerError.display(path), errno: .last))
        }
        try setOwnerAndTimes(entry, parent: parent, base: base, path: path, setMode: true, member: member)
        dropXattrs(entry, member: member, kind: type == S_IFIFO ? "a FIFO" : "a device")
    }

    /// A hard link's target: below the root like any member, present in this layer, not a
    /// directory, not the link itself. Returns its parent (the caller closes it) and name.
    private func checkLinkTarget(_ entry: TarEntry, path: [UInt8], member: String) throws(LayerError) -> (parent: Int32, base: [UInt8]) {
        let target: [[UInt8]]
        switch LayerApplier.clean(entry.linkName) {
        case .success(let cleaned): target = cleaned
        case .failure(let error):
            throw .unsafeMember(member: member, reason: "hard link target \"\(LayerError.display(entry.linkName))\": " + error.reason)
        }
        let shown = LayerError.display(entry.linkName)
        guard let targetBase = target.last else {
            throw .unsafeMember(member: member, reason: "a hard link to the layer root")
        }
        guard Self.join(target) != path else {
            throw .unsafeMember(member: member, reason: "a hard link to itself")
        }
        let targetParent: Int32
        do throws(LayerError) {
            targetParent = try openDirectory(Array(target.dropLast()), create: false, member: member)
        } catch {
            if case .system(_, let failure) = error, failure.errno == .noSuchFileOrDirectory {
                throw .unsafeMember(member: member, reason: "its hard link target \"\(shown)\" is not in this layer")
            }
            throw error
        }
        guard let info = try status(targetParent, targetBase, member: member) else {
            Glibc.close(targetParent)
            throw .unsafeMember(member: member, reason: "its hard link target \"\(shown)\" is not in this layer")
        }
        guard !Self.isDirectory(info) else {
            Glibc.close(targetParent)
            throw .unsafeMember(member: member, reason: "its hard link target \"\(shown)\" is a directory")
        }
        return (targetParent, targetBase)
    }

    private func link(_ target: (parent: Int32, base: [UInt8]), parent: Int32, base: [UInt8], path: [UInt8],
                      member: String) throws(LayerError) {
        let (targetParent, targetBase) = target
        // Flags 0: a symbolic link as target is linked itself, never followed.
        try call("linkat", member, path) {
            withCPath(targetBase) { from in withCPath(base) { linkat(targetParent, from, parent, $0, 0) } }
        }
    }

    private func applyWhiteout(_ entry: TarEntry, parentPath: [[UInt8]], base: [UInt8], member: String) throws(LayerError) {
        if base == LayerApplier.opaqueWhiteout {
            let directory = try openDirectory(parentPath, create: true, member: member)
            defer { Glibc.close(directory) }
            try setOpaque(directory, path: Self.join(parentPath), member: member)
            return
        }
        let hidden = Array(base.dropFirst(LayerApplier.whiteoutPrefix.count))
        guard !hidden.isEmpty else {
            throw .unsafeMember(member: member, reason: "a bare .wh. whiteout names nothing")
        }
        guard hidden != [UInt8(ascii: ".")], hidden != [UInt8(ascii: "."), UInt8(ascii: ".")] else {
            throw .unsafeMember(member: member, reason: "it whites out \".\" or \"..\"")
        }
        let path = Self.join(parentPath + [hidden])
        let parent = try parentDirectory(parentPath, member: member)
        if let existing = try status(parent, hidden, member: member) {
            // This layer has the name itself, which hides the lower one already; a directory of
            // this layer must also hide the lower directory's children.
            if Self.isDirectory(existing) {
                let fd = try call("openat", member, path) {
                    withCPath(hidden) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                }
                defer { Glibc.close(fd) }
                try setOpaque(fd, path: path, member: member)
            }
            return
        }
        // Character device 0/0: the overlayfs whiteout (no CAP_MKNOD needed for it since Linux 5.8).
        try call("mknodat", member, path) { withCPath(hidden) { mknodat(parent, $0, S_IFCHR, 0) } }
        if options.privileged {
            try call("fchownat", member, path) {
                withCPath(hidden) { fchownat(parent, $0, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW) }
            }
        }
    }

    // MARK: Metadata

    /// Owner (as root), mode (`setMode`) and times of a member that is not opened: a symbolic
    /// link, a device, a FIFO, all made a moment before by this unpacker in a directory only it
    /// writes to (fchmodat cannot refuse to follow; these are never links).
    private func setOwnerAndTimes(_ entry: TarEntry, parent: Int32, base: [UInt8], path: [UInt8], setMode: Bool,
                                  member: String) throws(LayerError) {
        if options.privileged {
            try call("fchownat", member, path) {
                withCPath(base) { fchownat(parent, $0, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW) }
            }
        }
        if setMode {
            try call("fchmodat", member, path) { withCPath(base) { fchmodat(parent, $0, mode_t(entry.mode), 0) } }
        }
        let times = Self.times(entry)
        try call("utimensat", member, path) { withCPath(base) { utimensat(parent, $0, times, AT_SYMLINK_NOFOLLOW) } }
    }

    /// Which of a member's xattrs a layer may carry (see ``LayerApplier``).
    static func keepsXattr(_ name: String, privileged: Bool) -> Bool {
        if name.utf8.contains(0) { return false }  // C would see only the part before the NUL
        if name.hasPrefix("user.overlay.") { return false }
        if name.hasPrefix("user.") { return true }
        return privileged && name == "security.capability"
    }

    private func setXattrs(_ entry: TarEntry, fd: Int32, path: [UInt8], member: String) throws(LayerError) {
        for (name, value) in entry.xattrs.sorted(by: { $0.key < $1.key }) {
            guard Self.keepsXattr(name, privileged: options.privileged) else {
                droppedXattrs += 1
                continue
            }
            let result = value.withUnsafeBytes { LayerSyscalls.setXattr(fd, name: name, value: $0) }
            guard result < 0 else { continue }
            let errno = Errno(rawValue: -result)
            if name.hasPrefix("user.") && (errno == .notPermitted || errno == .notSupported) {
                droppedXattrs += 1
                note("xattr \(name) of \(member) not set: \(errno.symbolicName)")
                continue
            }
            throw .system(member: member, SystemError("setxattr \(name)", path: LayerError.display(path), errno: errno))
        }
    }

    private func dropXattrs(_ entry: TarEntry, member: String, kind: String) {
        guard !entry.xattrs.isEmpty else { return }
        droppedXattrs += entry.xattrs.count
        note("xattrs of \(member) not set: \(kind) takes none podshim keeps")
    }

    private func setOpaque(_ fd: Int32, path: [UInt8], member: String) throws(LayerError) {
        let result = [UInt8(ascii: "y")].withUnsafeBytes { LayerSyscalls.setXattr(fd, name: options.opaqueXattr, value: $0) }
        guard result == 0 else {
            let shown = path.isEmpty ? "." : LayerError.display(path)
            throw .system(member: member, SystemError("setxattr \(options.opaqueXattr)", path: shown, errno: Errno(rawValue: -result)))
        }
    }

    private func skipDevice(_ member: String, because reason: String) {
        skippedDevices += 1
        note("device \(member) skipped: \(reason)")
    }

    private func note(_ text: String) {
        if notes.count < Self.maxNotes { notes.append(text) }
    }

    private static func times(_ entry: TarEntry) -> [timespec] {
        let modified = timespec(tv_sec: Int(entry.modificationTime.seconds), tv_nsec: Int(entry.modificationTime.nanoseconds))
        let accessed = entry.accessTime.map { timespec(tv_sec: Int($0.seconds), tv_nsec: Int($0.nanoseconds)) } ?? modified
        return [accessed, modified]
    }

    // MARK: Paths

    /// The parent directory of a member, borrowed: valid until the next call (a one-entry cache,
    /// since tars list a directory's members together).
    private func parentDirectory(_ components: [[UInt8]], member: String) throws(LayerError) -> Int32 {
        if components.isEmpty { return rootFD }
        let path = Self.join(components)
        if let cached, cached.path == path { return cached.fd }
        let fd = try openDirectory(components, create: true, member: member)
        close()
        cached = (path, fd)
        return fd
    }

    /// Opens a directory below the root (the caller closes it), never leaving the root nor
    /// passing a symbolic link; with `create`, missing directories are made on the way (0755).
    private func openDirectory(_ components: [[UInt8]], create: Bool, member: String) throws(LayerError) -> Int32 {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        if components.isEmpty {
            return try call("dup", member, nil) { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
        }
        let fd = withCPath(Self.join(components)) { LayerSyscalls.openat2(rootFD, $0, flags: flags, resolve: Self.beneath) }
        if fd >= 0 { return fd }
        // Component by component: makes what is missing (with `create`), names the one at fault.
        var current = try call("dup", member, nil) { fcntl(rootFD, F_DUPFD_CLOEXEC, 0) }
        for (index, component) in components.enumerated() {
            var next = withCPath(component) { LayerSyscalls.openat2(current, $0, flags: flags, resolve: Self.beneath) }
            if next == -ENOENT && create {
                if withCPath(component, { mkdirat(current, $0, 0o755) }) != 0 && errno != EEXIST {
                    let error = SystemError("mkdirat", path: LayerError.display(Self.join(components[...index])), errno: .last)
                    Glibc.close(current)
                    throw .system(member: member, error)
                }
                next = withCPath(component) { LayerSyscalls.openat2(current, $0, flags: flags, resolve: Self.beneath) }
                if next >= 0 { _ = fchmod(next, 0o755) }  // whatever the umask; a failure only leaves it narrower
            }
            var info = stat()
            if next == -ENOTDIR && create && withCPath(component, { fstatat(current, $0, &info, AT_SYMLINK_NOFOLLOW) }) == 0
                && Self.isWhiteoutDevice(info) {
                // `.wh.d` then `d/x` without `d/`: a new directory where the whiteout was, opaque
                // (as if `d/` had come), rather than a refusal.
                do throws(LayerError) {
                    next = try replaceWhiteoutWithDirectory(current, component, path: Self.join(components[...index]),
                                                            member: member)
                } catch {
                    Glibc.close(current)
                    throw error
                }
            }
            if next < 0 {
                // O_NOFOLLOW | O_DIRECTORY on a symbolic link says ENOTDIR: tell the two apart.
                let isLink = withCPath(component) { fstatat(current, $0, &info, AT_SYMLINK_NOFOLLOW) } == 0
                    && (info.st_mode & S_IFMT) == S_IFLNK
                Glibc.close(current)
                throw parentError(isLink ? -ELOOP : next, path: Self.join(components[...index]), member: member)
            }
            Glibc.close(current)
            current = next
        }
        return current
    }

    /// Replaces the whiteout `name` in `parent` with an opaque directory (0755) and returns it open.
    private func replaceWhiteoutWithDirectory(_ parent: Int32, _ name: [UInt8], path: [UInt8],
                                              member: String) throws(LayerError) -> Int32 {
        try call("unlinkat", member, path) { withCPath(name) { unlinkat(parent, $0, 0) } }
        try call("mkdirat", member, path) { withCPath(name) { mkdirat(parent, $0, 0o755) } }
        let fd = try call("openat", member, path) {
            withCPath(name) { openat(parent, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        }
        do throws(LayerError) {
            try setOpaque(fd, path: path, member: member)
        } catch {
            Glibc.close(fd)
            throw error
        }
        _ = fchmod(fd, 0o755)  // whatever the umask; a failure only leaves it narrower
        return fd
    }

    private func parentError(_ result: Int32, path: [UInt8], member: String) -> LayerError {
        let shown = LayerError.display(path)
        switch -result {
        case ELOOP: return .unsafeMember(member: member, reason: "\"\(shown)\" on its path is a symbolic link")
        case EXDEV: return .unsafeMember(member: member, reason: "its path leaves the layer directory at \"\(shown)\"")
        case ENOTDIR: return .unsafeMember(member: member, reason: "\"\(shown)\" on its path is not a directory")
        default: return .system(member: member, SystemError("openat2 (beneath the layer)", path: shown, errno: Errno(rawValue: -result)))
        }
    }

    private func status(_ parent: Int32, _ base: [UInt8], member: String) throws(LayerError) -> stat? {
        var info = stat()
        if withCPath(base, { fstatat(parent, $0, &info, AT_SYMLINK_NOFOLLOW) }) == 0 { return info }
        if errno == ENOENT { return nil }
        throw .system(member: member, SystemError("fstatat", path: LayerError.display(base), errno: .last))
    }

    /// Removes what an earlier member put at `path`; forgets the cached parent and the deferred
    /// metadata of anything inside a removed directory.
    private func remove(_ parent: Int32, _ base: [UInt8], path: [UInt8], isDirectory: Bool, member: String) throws(LayerError) {
        do throws(SystemError) {
            try LayerApplier.removeTree(parent, base)
        } catch {
            throw .system(member: member, error)
        }
        guard isDirectory else { return }
        let inside = path + [UInt8(ascii: "/")]
        if let cached, cached.path == path || cached.path.starts(with: inside) { close() }
        for key in deferred.keys where key == path || key.starts(with: inside) { deferred[key] = nil }
    }

    private static func join(_ components: some Collection<[UInt8]>) -> [UInt8] {
        Array(components.joined(separator: [UInt8(ascii: "/")]))
    }

    private static func isDirectory(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFDIR }

    private static func isWhiteoutDevice(_ info: stat) -> Bool {
        (info.st_mode & S_IFMT) == S_IFCHR && info.st_rdev == 0
    }

    /// Runs a libc call that returns -1 and sets errno (EINTR retried); a failure names the member.
    @discardableResult
    private func call<T: BinaryInteger>(_ operation: String, _ member: String, _ path: [UInt8]?,
                                        _ body: () -> T) throws(LayerError) -> T {
        do throws(SystemError) {
            return try libcCall(operation, path: path.map(LayerError.display) ?? member, body)
        } catch {
            throw .system(member: member, error)
        }
    }
}
