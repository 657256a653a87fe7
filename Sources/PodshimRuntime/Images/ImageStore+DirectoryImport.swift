import Foundation
import Glibc
import PodshimSystem

/// Pulling from a plain root filesystem directory.
extension ImageStore {
    static let copyProgram = "/bin/cp"

    /// Copies the directory at `path` (its contents, with `cp -a`: modes, owners, times, symbolic
    /// links; not crossing into other file systems) to the store as `tagAs` or its base name.
    func importDirectory(_ path: String, tagAs: String?) throws(ImagePullError) -> ImageRecord {
        let name = try storedName(tagAs: tagAs, repository: (path as NSString).lastPathComponent, tag: "latest")
        guard let resolved = realpath(path, nil) else { throw .notFound(path) }
        let source = String(cString: resolved)
        free(resolved)
        let id = Self.directoryID(source, repoTag: name.repoTag)
        if let existing = try existing(name, id: id) { return existing }

        let rootfs = imageDirectory(name.directoryName) + "/rootfs"
        return try install(name) { staging throws(ImagePullError) in
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
                               rootfs: rootfs)
        }
    }

    /// A stable id for a directory image: sha256 over its tag and, for every entry, its path, type
    /// and size. The same tree under the same tag always has the same id.
    static func directoryID(_ path: String, repoTag: String) -> String {
        var hasher = SHA256()
        hasher.update("podshim-directory:\(repoTag)\n")
        FileTree.walk(path) { relative, info in
            let type: String
            switch info.st_mode & S_IFMT {
            case S_IFDIR: type = "d"
            case S_IFREG: type = "f"
            case S_IFLNK: type = "l"
            default: type = "o"
            }
            let size = type == "d" ? 0 : max(info.st_size, 0)
            hasher.update("\(relative)\t\(type)\t\(size)\n")
        }
        return "sha256:" + hasher.finalizeHex()
    }
}
