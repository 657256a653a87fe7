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
            return try importDirectory(path, tagAs: tagAs, config: nil, moveTag: false)
        case .ociLayout(let path, let ref):
            return try importLayout(path, reference: ref, tagAs: tagAs, moveTag: false)
        }
    }

    // MARK: Naming

    /// The tag an image is stored as, and its directory name under the store.
    public struct StoredName: Equatable, Sendable {
        public var repository: String
        public var tag: String
        /// `<store>/<directoryName>`, by ``storeName(_:)`` rules: `busybox` for `busybox:latest`.
        var directoryName: String
        public var repoTag: String { repository + ":" + tag }
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
        // A registry and path components become part of one directory name (`/` → `_`).
        guard !repository.isEmpty, !tag.isEmpty,
              let directoryName = try? storeName(repoTag.replacingOccurrences(of: "/", with: "_")) else { // thrown as .invalidName just below
            throw .invalidName(tagAs ?? repoTag)
        }
        return StoredName(repository: repository, tag: tag, directoryName: directoryName)
    }

    /// The name a registry image is stored under: `repository:tag`, or for a pull by digest only
    /// no tag and a directory named after the repository and the digest.
    public func storedName(repository: String, tag: String?, digest: String) throws(ImagePullError) -> StoredName {
        if let tag { return try storedName(tagAs: repository + ":" + tag, repository: repository, tag: tag) }
        let base = try storedName(tagAs: nil, repository: repository, tag: String(digest.dropFirst("sha256:".count).prefix(12)))
        return StoredName(repository: base.repository, tag: "", directoryName: base.directoryName)
    }

    // MARK: Installing

    /// The stored image with `id`, now also tagged `name`; nil when no image has `id` yet. When the
    /// tag names another image it moves here if `moveTag` (an explicit import), and is
    /// ``ImagePullError/conflict(name:existingID:newID:)`` otherwise (a pull by path).
    public func adopt(_ name: StoredName, id: String, moveTag: Bool) throws(ImagePullError) -> ImageRecord? {
        try withReferenceLock { () throws(ImagePullError) -> ImageRecord? in
            let records = list()
            if name.tag.isEmpty { return records.first { $0.id == id } }
            if let holder = records.first(where: { $0.isTagged(name.repoTag) }), holder.id != id, !moveTag {
                throw .conflict(name: name.repoTag, existingID: holder.id, newID: id)
            }
            guard records.contains(where: { $0.id == id }) else { return nil }
            return try assignTag(name.repoTag, toImage: id)
        }
    }

    /// Runs `build` in a fresh staging directory (it fills `staging.rootfs` and returns the record,
    /// given the root filesystem's final path), writes `image.json` and renames the whole into
    /// `<store>/<name>` (or `<name>-<id prefix>` when that is taken), then points the tag at it.
    /// When another pull of the same image got there first, its image is returned.
    func install(
        _ name: StoredName, id: String, build: (ImageStaging, String) throws(ImagePullError) -> ImageRecord
    ) throws(ImagePullError) -> ImageRecord {
        let staging = try ImageStaging(store: directory)
        var committed = false
        defer { if !committed { staging.discard() } }
        let directoryName = freeDirectoryName(name.directoryName, id: id)
        let target = imageDirectory(directoryName)
        let built = try build(staging, target + "/rootfs")
        try staging.writeRecord(built)
        committed = try staging.commit(as: target)
        if !committed, record(named: directoryName)?.id != id {
            // Only a stray directory without rootfs/ can be in the way: not an image, not ours to delete.
            throw .system(SystemError("rename (the directory is in the way)", path: target, errno: .directoryNotEmpty))
        }
        if name.tag.isEmpty, let stored = list().first(where: { $0.id == id }) { return stored }  // pulled by digest only
        if let tagged = try withReferenceLock({ () throws(ImagePullError) -> ImageRecord? in
            try assignTag(name.repoTag, toImage: id)
        }) {
            return tagged
        }
        throw .system(SystemError("read image.json", path: target, errno: .noSuchFileOrDirectory))
    }

    /// Records a layered image (its layers already in the layer store) as `name`: `image.json` in a
    /// staging directory renamed to `<store>/<name>`, then the tag pointed at it. When another
    /// pull of the same image got there first, its image is returned.
    public func installLayered(_ name: StoredName, id: String, record: ImageRecord) throws(ImagePullError) -> ImageRecord {
        try install(name, id: id) { _, _ throws(ImagePullError) in record }
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
