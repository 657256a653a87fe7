import Foundation
import Glibc
import PodshimSystem

/// Pulling from a plain root filesystem directory.
extension ImageStore {
    static let copyProgram = "/bin/cp"

    /// Copies the directory at `path` (its contents, with `cp -a`: modes, owners, times, symbolic
    /// links; not crossing into other file systems) to the store as `tagAs` or its base name, with
    /// `config` as the image's default process (none when nil). `moveTag`: see ``adopt(_:id:moveTag:)``.
    func importDirectory(_ path: String, tagAs: String?, config: ImageConfig?, moveTag: Bool) throws(ImagePullError) -> ImageRecord {
        let name = try storedName(tagAs: tagAs, repository: (path as NSString).lastPathComponent, tag: "latest")
        guard let resolved = realpath(path, nil) else { throw .notFound(path) }
        let source = String(cString: resolved)
        free(resolved)
        let config = config ?? ImageConfig()
        let id = Self.directoryID(source, config: config)
        if let existing = try adopt(name, id: id, moveTag: moveTag) { return existing }

        return try install(name, id: id) { staging, rootfs throws(ImagePullError) in
            // `source/.` copies the directory's contents into the new rootfs (and its mode, owner
            // and times onto it), and works when `source` is reached through a symbolic link.
            let copy = HelperCommand([Self.copyProgram, "-a", "-x", "--", source + "/.", staging.rootfs])
            let result: HelperCommand.Result
            do throws(SystemError) {
                result = try copy.run()
            } catch {
                throw .system(error)
            }
            guard result.succeeded else {
                throw .commandFailed(command: copy.display, status: result.status.description, stderr: result.stderrText)
            }
            return ImageRecord(id: id, repoTags: [name.repoTag], size: FileTree.contentSize(of: staging.rootfs),
                               config: config, rootfs: rootfs)
        }
    }

    /// The id of a directory image, from its content alone: sha256 over the default process and,
    /// for every entry in path order, its path, type, mode, owner and size, a regular file's bytes
    /// (once: further hard links to it name the first path) and a symbolic link's target. The same
    /// tree and settings have the same id under any name.
    static func directoryID(_ path: String, config: ImageConfig) -> String {
        var hasher = SHA256()
        hasher.update("podshim-directory-v2\n")
        // Cannot fail: ImageConfig holds only strings and string arrays.
        if let settings = try? ImageRecord.makeEncoder().encode(config) { hasher.update(Array(settings)) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var linked: [String: String] = [:]  // "dev:ino" of files with several links → first path
        FileTree.walk(path) { relative, info in
            let type: String
            switch info.st_mode & S_IFMT {
            case S_IFDIR: type = "d"
            case S_IFREG where info.st_nlink > 1:
                let key = "\(info.st_dev):\(info.st_ino)"
                if let first = linked[key] {
                    hasher.update("\n\(relative)\th\t\(first)")
                    return
                }
                linked[key] = relative
                type = "f"
            case S_IFREG: type = "f"
            case S_IFLNK: type = "l"
            default: type = "o\(info.st_rdev)"
            }
            let size = type == "d" ? 0 : max(info.st_size, 0)
            hasher.update("\n\(relative)\t\(type)\t\(info.st_mode & 0o7777)\t\(info.st_uid):\(info.st_gid)\t\(size)\t")
            let full = path + "/" + relative
            if type == "l" {
                let count = readlink(full, &buffer, buffer.count)
                if count > 0 { hasher.update(Array(buffer[..<count])) }
            } else if type == "f" {
                let fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
                guard fd >= 0 else { return }
                defer { close(fd) }
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count <= 0 { break }
                    buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
                }
            }
        }
        return "sha256:" + hasher.finalizeHex()
    }
}
