import Foundation
import Glibc
import PodshimSystem

/// Bringing images into the store: CRI `PullImage`, from local sources only.
extension ImageStore {
    /// Makes the image `reference` available in the store and returns its record. No network is
    /// ever used; `reference` is one of:
    /// - an image already in the store (any form ``status(_:)`` accepts): returned as it is;
    /// - an absolute path to a plain root filesystem directory: copied (`cp -a`) to
    ///   `<store>/<name>/rootfs`, name = `tagAs` or the directory's base name;
    /// - an absolute path to an OCI image layout, optionally `:ref` after it or `oci:` before it
    ///   (`/srv/images/alpine-oci:3.19`, `oci:/srv/x:tag`): the image whose
    ///   `org.opencontainers.image.ref.name` is `ref` (or the only one), for linux on this machine's
    ///   architecture, with every blob verified, its layers extracted and whiteouts applied. Name =
    ///   `tagAs`, or the layout's base name tagged `ref` (or `latest`).
    ///
    /// Anything else, such as `docker.io/library/nginx:1.25`, is ``ImagePullError/remoteNotSupported(_:)``.
    ///
    /// Pulling a source again returns the stored image when it is the same image (same id), and is
    /// ``ImagePullError/conflict(name:existingID:newID:)`` when the name holds another. Images are
    /// assembled in a private staging directory and appear with one `rename`, so concurrent pulls
    /// of one reference are safe: the first to finish wins and the others return its record.
    /// `tagAs` (`name` or `name:tag`) is ignored for images already in the store.
    public func pull(_ reference: String, tagAs: String? = nil) throws(ImagePullError) -> ImageRecord {
        switch try ImageSource.parse(reference) {
        case .stored(let name):
            if case .found(let records) = lookup(name), let record = records.first { return record }
            throw .remoteNotSupported(reference)
        case .directory(let path):
            return try importDirectory(path, tagAs: tagAs)
        case .ociLayout(let path, let ref):
            return try importLayout(path, reference: ref, tagAs: tagAs)
        }
    }

    // MARK: Naming

    /// The tag an image is stored as, and its directory name under the store.
    struct StoredName: Equatable {
        var repository: String
        var tag: String
        /// `<store>/<directoryName>`, by ``storeName(_:)`` rules: `busybox` for `busybox:latest`.
        var directoryName: String
        var repoTag: String { repository + ":" + tag }
    }

    /// `tagAs` when given (a default registry prefix dropped, `:latest` when untagged), else
    /// `repository:tag`; it must make a valid store name.
    func storedName(tagAs: String?, repository: String, tag: String) throws(ImagePullError) -> StoredName {
        var repository = repository
        var tag = tag
        if let tagAs {
            let split = ImageReference.split(ImageReference.withoutDefaultRegistry(tagAs))
            repository = split.repository
            tag = split.tag ?? "latest"
        }
        let repoTag = repository + ":" + tag
        guard !repository.isEmpty, !tag.isEmpty, let directoryName = try? storeName(repoTag) else {
            throw .invalidName(tagAs ?? repoTag)
        }
        return StoredName(repository: repository, tag: tag, directoryName: directoryName)
    }

    // MARK: Installing

    /// The stored image named `name` when it has id `id`; nil when the name is free.
    func existing(_ name: StoredName, id: String) throws(ImagePullError) -> ImageRecord? {
        guard let record = record(named: name.directoryName) else { return nil }
        guard record.id == id else { throw .conflict(name: name.repoTag, existingID: record.id, newID: id) }
        return record
    }

    /// Runs `build` in a fresh staging directory (it fills `staging.rootfs` and returns the record),
    /// writes `image.json` and renames the whole into `<store>/<name>`. When another pull installed
    /// the name meanwhile, the staged copy is dropped and the installed image returned.
    func install(
        _ name: StoredName, build: (ImageStaging) throws(ImagePullError) -> ImageRecord
    ) throws(ImagePullError) -> ImageRecord {
        let staging = try ImageStaging(store: directory)
        var committed = false
        defer { if !committed { staging.discard() } }
        let built = try build(staging)
        try staging.writeRecord(built)
        let target = imageDirectory(name.directoryName)
        committed = try staging.commit(as: target)
        if let installed = record(named: name.directoryName) { return installed }
        // Only a stray directory without rootfs/ can be in the way: not an image, not ours to delete.
        throw .system(SystemError("rename (a directory without rootfs is in the way)", path: target,
                                  errno: .directoryNotEmpty))
    }

    /// Creates the directory `path` with mode 0755 exactly (whatever the umask).
    func makeImageDirectory(_ path: String) throws(ImagePullError) {
        do throws(SystemError) {
            try libcCall("mkdir", path: path) { mkdir(path, 0o755) }
            try libcCall("chmod", path: path) { chmod(path, 0o755) }
        } catch {
            throw .system(error)
        }
    }
}
