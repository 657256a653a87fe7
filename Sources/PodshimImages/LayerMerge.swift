import Glibc
import PodshimSystem

/// Puts one extracted layer on top of the root filesystem built from the layers below it,
/// applying the layer's OCI whiteouts:
/// - `.wh.NAME` removes `NAME` of the lower layers, and is not itself part of the image;
/// - `.wh..wh..opq` in a directory removes everything lower layers put in that directory.
///
/// Whiteouts are applied in each directory before the layer's own entries are moved in, so they
/// only ever remove lower content. Entries are moved with `rename`, never copied; every path is
/// checked with `lstat`, so a symbolic link in a lower layer is replaced, never followed.
enum LayerMerge {
    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    /// Moves the contents of `layer` onto `rootfs` (both directories on one file system). With
    /// `rootMetadata`, the layer directory's owner, mode and times replace the root's.
    static func apply(layer: String, onto rootfs: String, rootMetadata: Bool) throws(ImagePullError) {
        do throws(SystemError) {
            let layerInfo = try status(layer)
            let rootInfo = try status(rootfs)
            try merge(layer, into: rootfs)
            try setMetadata(of: rootfs, from: rootMetadata ? layerInfo : rootInfo)
        } catch {
            throw .system(error)
        }
    }

    private static func merge(_ source: String, into target: String) throws(SystemError) {
        let unprivileged = geteuid() != 0
        if unprivileged {
            // Without CAP_DAC_OVERRIDE, moving entries needs write access to both directories; the
            // final modes are set afterwards.
            try makeWritable(source)
            try makeWritable(target)
        }
        let names = try entries(of: source)
        if names.contains(opaqueMarker) {
            for child in try entries(of: target) { try FileSystem.removeTree(target + "/" + child) }
        }
        for name in names where name.hasPrefix(whiteoutPrefix) && name != opaqueMarker {
            let hidden = String(name.dropFirst(whiteoutPrefix.count))
            guard !hidden.isEmpty, hidden != ".", hidden != ".." else { continue }
            try FileSystem.removeTree(target + "/" + hidden)
        }
        for name in names where !name.hasPrefix(whiteoutPrefix) {
            let from = source + "/" + name
            let to = target + "/" + name
            let fromInfo = try status(from)
            let existing = try statusIfPresent(to)
            if isDirectory(fromInfo), let existing, isDirectory(existing) {
                try merge(from, into: to)
                try setMetadata(of: to, from: fromInfo)
            } else {
                if existing != nil { try FileSystem.removeTree(to) }
                try libcCall("rename", path: to) { rename(from, to) }
                if isDirectory(fromInfo) { try removeWhiteouts(in: to) }
            }
        }
    }

    /// Deletes whiteout files from a directory that had no lower counterpart: there is nothing for
    /// them to hide. The directories' modification times are kept.
    private static func removeWhiteouts(in directory: String) throws(SystemError) {
        let info = try status(directory)
        var changed = false
        for name in try entries(of: directory) {
            let path = directory + "/" + name
            if name.hasPrefix(whiteoutPrefix) {
                if geteuid() != 0 { try makeWritable(directory) }
                try FileSystem.removeTree(path)
                changed = true
            } else if let child = try statusIfPresent(path), isDirectory(child) {
                try removeWhiteouts(in: path)
            }
        }
        if changed { try setMetadata(of: directory, from: info) }
    }

    // MARK: Helpers

    private static func isDirectory(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFDIR }

    private static func status(_ path: String) throws(SystemError) -> stat {
        var info = stat()
        try libcCall("lstat", path: path) { lstat(path, &info) }
        return info
    }

    private static func statusIfPresent(_ path: String) throws(SystemError) -> stat? {
        var info = stat()
        if lstat(path, &info) == 0 { return info }
        if errno == ENOENT { return nil }
        throw SystemError("lstat", path: path, errno: .last)
    }

    private static func entries(of directory: String) throws(SystemError) -> [String] {
        // opendir would only fail for a reason worth reporting; FileTree.entries swallows it.
        guard let handle = opendir(directory) else { throw SystemError("opendir", path: directory, errno: .last) }
        closedir(handle)
        return FileTree.entries(of: directory)
    }

    private static func makeWritable(_ directory: String) throws(SystemError) {
        let info = try status(directory)
        if info.st_mode & S_IRWXU != S_IRWXU {
            try libcCall("chmod", path: directory) { chmod(directory, (info.st_mode & 0o7777) | S_IRWXU) }
        }
    }

    /// Gives directory `path` the owner (when root), mode and times in `info`.
    private static func setMetadata(of path: String, from info: stat) throws(SystemError) {
        if geteuid() == 0 {
            try libcCall("lchown", path: path) { lchown(path, info.st_uid, info.st_gid) }
        }
        try libcCall("chmod", path: path) { chmod(path, info.st_mode & 0o7777) }
        var times = [info.st_atim, info.st_mtim]
        try libcCall("utimensat", path: path) { utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) }
    }
}
