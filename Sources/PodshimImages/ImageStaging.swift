import Foundation
import Glibc
import PodshimSystem

/// A private directory inside the store (`<store>/.staging-<uuid>`) where one pull assembles
/// `rootfs/` and `image.json`. Only ``commit(as:)`` makes the image visible, with one `rename`:
/// no reader ever sees half an image, and of two pulls racing for one name exactly one wins.
/// Names starting with `.` are never image names, so the store's listing skips these.
struct ImageStaging {
    static let prefix = ".staging-"

    /// The staging directory itself.
    let path: String
    private let store: String

    /// Creates the store directory if needed, and a fresh staging directory in it.
    init(store: String) throws(ImagePullError) {
        self.store = store
        path = store + "/" + Self.prefix + UUID().uuidString.lowercased()
        do throws(SystemError) {
            try FileSystem.createDirectory(store)
            try libcCall("mkdir", path: path) { mkdir(path, 0o700) }
        } catch {
            throw .system(error)
        }
    }

    /// Where the image's root filesystem is assembled.
    var rootfs: String { path + "/rootfs" }

    /// A scratch path inside the staging directory (on the store's file system, so renames from it
    /// into ``rootfs`` work).
    func scratch(_ name: String) -> String { path + "/" + name }

    /// Writes `record` as the staged `image.json`.
    func writeRecord(_ record: ImageRecord) throws(ImagePullError) {
        let data: Data
        do {
            data = try ImageRecord.makeEncoder().encode(record)
        } catch {
            throw .malformedDocument(path: path + "/" + ImageStore.metadataFile, detail: "\(error)")
        }
        do throws(SystemError) {
            try FileSystem.writeAtomically(path + "/" + ImageStore.metadataFile, String(decoding: data, as: UTF8.self) + "\n")
        } catch {
            throw .system(error)
        }
    }

    /// Renames the staging directory to `target` (`<store>/<name>`). Returns false, leaving the
    /// staging directory in place, when `target` already exists (another pull got there first).
    func commit(as target: String) throws(ImagePullError) -> Bool {
        do throws(SystemError) {
            try libcCall("chmod", path: path) { chmod(path, 0o755) }
            if rename(path, target) != 0 {
                if errno == EEXIST || errno == ENOTEMPTY { return false }
                throw SystemError("rename", path: target, errno: .last)
            }
            // Make the rename durable, as writeAtomically does for files.
            let fd = try libcCall("open", path: store) { open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(fd) }
            try libcCall("fsync", path: store) { fsync(fd) }
            return true
        } catch {
            throw .system(error)
        }
    }

    /// Deletes the staging directory and everything in it (best effort: it is invisible anyway).
    func discard() {
        try? FileSystem.removeTree(path) // best effort: a leftover .staging- directory is skipped by every listing
    }
}
