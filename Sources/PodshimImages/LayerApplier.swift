import Glibc
import PodshimSystem

/// What applying one layer did. The caller checks `diffID` against the image config's
/// `rootfs.diff_ids` (or passes it as `expectedDiffID`) and keys the directory by ChainID.
public struct LayerApplySummary: Equatable, Sendable {
    public var encoding: LayerEncoding
    /// `sha256:<hex>` of the blob as read (compressed): the descriptor's digest.
    public var digest: String
    /// `sha256:<hex>` of the uncompressed tar.
    public var diffID: String
    public var compressedBytes: UInt64
    public var uncompressedBytes: UInt64
    /// Members applied (extended headers not counted), whiteouts included.
    public var entries: Int
    /// Whether the tar had an entry for its root (`./`), whose owner, mode and times the layer
    /// directory then has.
    public var hasRootEntry: Bool
    /// Device nodes not created (not root, or mknod said EPERM).
    public var skippedDevices: Int
    /// Extended attributes not applied: not allowed (`trusted.*`, `user.overlay.*`, anything but
    /// `user.*` and, as root, `security.capability`), on a kind of file that takes none, or
    /// refused by the file system.
    public var droppedXattrs: Int
    /// The first few things skipped, in words, for a log line.
    public var notes: [String]
}

/// Applies one layer tarball into a fresh, empty directory of its own, in the form an overlayfs
/// lowerdir needs (image-spec layer.md, registry.md §4); replaces the GNU tar child of
/// ``LayerArchive`` with an in-process unpacker that never leaves that directory.
///
/// - The blob is decompressed as read (``LayerDecompressor``: plain, gzip, zstd) and hashed on
///   both sides; ``TarReader`` reads it member by member.
/// - Names: a leading `/` is dropped (as containerd does), `.` components and empty ones are
///   ignored, `..` is resolved lexically and refused when it climbs above the root; a name that
///   is the root (`./`) sets the layer directory's owner, mode, times and xattrs.
/// - Every member is created beneath the root: its parent directory is opened with openat2
///   (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), missing
///   parents are created (0755) one component at a time the same way, and the last component is
///   never followed (O_NOFOLLOW, O_EXCL, AT_SYMLINK_NOFOLLOW). A member below a symbolic link of
///   the layer (`a -> /etc`, then `a/passwd`) is refused: a tar made from a file system never
///   has one. A hard link's target is resolved the same way and must be in this layer.
/// - A later member replaces an earlier one at its path (unlink, or remove the tree, then
///   create) unless both are directories, where only the metadata changes.
/// - Owners (numeric; as root only), then mode (chown clears setuid), then xattrs, then times;
///   directories' modes and times last, deepest first. Xattrs kept: `user.*` (not
///   `user.overlay.*`) and, as root, `security.capability`; everything else is dropped so a layer
///   cannot steer the overlay mount. Device nodes need root; without it (or on EPERM) they are
///   skipped and counted. FIFOs are made either way.
/// - Whiteouts, overlay style: `.wh.NAME` becomes a character device 0/0 `NAME` with the
///   member's owner; when this layer has `NAME` itself, that already hides the lower one (a
///   directory is made opaque too, as is a directory that later replaces a whiteout, so a lower
///   directory's children do not show through). `.wh..wh..opq` sets ``Options/opaqueXattr`` on
///   its directory wherever it is in the tar. A bare `.wh.` and `.wh.` names used as
///   directories are refused.
///
/// The DiffID is known only after the last byte, so a mismatch is reported after the files are
/// written: the caller discards the directory on any error (``removeLayerDirectory(_:)``).
public enum LayerApplier {
    public struct Options: Sendable {
        /// Set owners, make device nodes, keep `security.capability`. Default: running as root.
        public var privileged: Bool
        /// The xattr marking an opaque directory: `trusted.overlay.opaque` (needs root), or
        /// `user.overlay.opaque` for overlay mounts with `userxattr`.
        public var opaqueXattr: String
        /// Stop with ``LayerError/limitExceeded(member:detail:)`` past this many uncompressed bytes.
        public var maxUncompressedBytes: UInt64?
        /// Stop past this many members.
        public var maxEntries: Int?
        public var tarLimits: TarLimits

        public init(privileged: Bool = geteuid() == 0, opaqueXattr: String = "trusted.overlay.opaque",
                    maxUncompressedBytes: UInt64? = nil, maxEntries: Int? = nil, tarLimits: TarLimits = TarLimits()) {
            self.privileged = privileged
            self.opaqueXattr = opaqueXattr
            self.maxUncompressedBytes = maxUncompressedBytes
            self.maxEntries = maxEntries
            self.tarLimits = tarLimits
        }
    }

    static let whiteoutPrefix = Array(".wh.".utf8)
    static let opaqueWhiteout = Array(".wh..wh..opq".utf8)

    /// Applies the blob open at `fd` (read from its current offset to its end; `path` for
    /// messages) into `directory`, which must exist and be empty. With `expectedDigest` or
    /// `expectedDiffID` (`sha256:<hex>`), a different hash throws
    /// ``LayerError/digestMismatch(what:expected:actual:)``.
    public static func apply(blob fd: Int32, path: String, into directory: String, expectedDigest: String? = nil,
                             expectedDiffID: String? = nil, options: Options = Options()) throws(LayerError) -> LayerApplySummary {
        try apply(LayerFileSource(fd: fd, path: path), into: directory, expectedDigest: expectedDigest,
                  expectedDiffID: expectedDiffID, options: options)
    }

    /// ``apply(blob:path:into:expectedDigest:expectedDiffID:options:)`` from any byte source.
    public static func apply<Source: LayerByteSource>(_ source: Source, into directory: String, expectedDigest: String? = nil,
                                                      expectedDiffID: String? = nil,
                                                      options: Options = Options()) throws(LayerError) -> LayerApplySummary {
        let rootFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw .system(member: nil, SystemError("open", path: directory, errno: .last)) }
        defer { close(rootFD) }
        guard try isEmpty(rootFD, path: directory) else { throw .directoryNotEmpty(directory) }

        let decompressor = LayerDecompressor(source, limit: options.maxUncompressedBytes)
        var reader = TarReader(decompressor, limits: options.tarLimits)
        let writer = LayerWriter(rootFD: rootFD, options: options)
        defer { writer.close() }
        var entries = 0
        while let entry = try reader.next() {
            entries += 1
            if let maxEntries = options.maxEntries, entries > maxEntries {
                throw .limitExceeded(member: entry.displayName, detail: "more than \(maxEntries) members")
            }
            try writer.apply(entry, reader: &reader)
        }
        let (digest, diffID) = try decompressor.finish()
        if let expectedDigest, expectedDigest != digest {
            throw .digestMismatch(what: "digest", expected: expectedDigest, actual: digest)
        }
        if let expectedDiffID, expectedDiffID != diffID {
            throw .digestMismatch(what: "DiffID", expected: expectedDiffID, actual: diffID)
        }
        try writer.finish()
        return LayerApplySummary(
            encoding: decompressor.encoding ?? .plain, digest: digest, diffID: diffID,
            compressedBytes: decompressor.compressedBytes, uncompressedBytes: decompressor.uncompressedBytes,
            entries: entries, hasRootEntry: writer.hasRootEntry, skippedDevices: writer.skippedDevices,
            droppedXattrs: writer.droppedXattrs, notes: writer.notes)
    }

    /// Removes a layer directory and everything in it without following any symbolic link,
    /// whatever the names' bytes and the directories' modes; nothing when it does not exist.
    public static func removeLayerDirectory(_ directory: String) throws(SystemError) {
        let bytes = Array(directory.utf8)
        let slash = bytes.lastIndex(of: UInt8(ascii: "/"))
        let parent = slash.map { $0 == 0 ? "/" : String(decoding: bytes[..<$0], as: UTF8.self) } ?? "."
        let name = Array(slash.map { bytes[($0 + 1)...] } ?? bytes[...])
        let parentFD = try libcCall("open", path: parent) { open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { Glibc.close(parentFD) }
        do throws(SystemError) {
            try removeTree(parentFD, name)
        } catch {
            if error.errno == .noSuchFileOrDirectory { return }
            throw error
        }
    }

    // MARK: Names

    /// The components of a member name below the layer root ([] for the root itself), or why it
    /// has none: `..` climbing above the root.
    static func clean(_ name: [UInt8]) -> Result<[[UInt8]], CleanError> {
        if name.isEmpty { return .failure(CleanError(reason: "its name is empty")) }
        var components: [[UInt8]] = []
        for component in name.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if component.elementsEqual([UInt8(ascii: ".")]) { continue }
            if component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                guard !components.isEmpty else {
                    return .failure(CleanError(reason: "its \"..\" leads out of the layer directory"))
                }
                components.removeLast()
                continue
            }
            guard component.count <= Int(NAME_MAX) else {
                return .failure(CleanError(reason: "a component is longer than \(NAME_MAX) bytes"))
            }
            components.append(Array(component))
        }
        return .success(components)
    }

    struct CleanError: Error {
        var reason: String
    }

    static func isWhiteout(_ component: [UInt8]) -> Bool {
        component.starts(with: whiteoutPrefix)
    }

    // MARK: Directory helpers

    private static func isEmpty(_ fd: Int32, path: String) throws(LayerError) -> Bool {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0, let handle = fdopendir(copy) else {
            let error = SystemError("opendir", path: path, errno: .last)
            if copy >= 0 { Glibc.close(copy) }
            throw .system(member: nil, error)
        }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = entryName(entry)
            if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { return false }
        }
        return true
    }

    static func entryName(_ entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
        withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
    }

    /// Removes `name` in `parentFD`: unlinks it, or empties and removes it when it is a
    /// directory. Symbolic links are removed, never followed.
    static func removeTree(_ parentFD: Int32, _ name: [UInt8]) throws(SystemError) {
        let display = LayerError.display(name)
        if withCPath(name, { unlinkat(parentFD, $0, 0) }) == 0 { return }
        guard errno == EISDIR else { throw SystemError("unlink", path: display, errno: .last) }
        let fd = withCPath(name) { openat(parentFD, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard fd >= 0 else { throw SystemError("open", path: display, errno: .last) }
        if geteuid() != 0 { _ = fchmod(fd, 0o700) }  // without CAP_DAC_OVERRIDE, emptying needs w and x
        guard let handle = fdopendir(fd) else {
            let error = SystemError("opendir", path: display, errno: .last)
            Glibc.close(fd)
            throw error
        }
        defer { closedir(handle) }
        var children: [[UInt8]] = []
        while let entry = readdir(handle) {
            let child = entryName(entry)
            if child != [UInt8(ascii: ".")] && child != [UInt8(ascii: "."), UInt8(ascii: ".")] { children.append(child) }
        }
        for child in children { try removeTree(dirfd(handle), child) }
        if withCPath(name, { unlinkat(parentFD, $0, AT_REMOVEDIR) }) != 0 {
            throw SystemError("rmdir", path: display, errno: .last)
        }
    }
}
