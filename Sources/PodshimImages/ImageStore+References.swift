import Foundation
import Glibc
import PodshimSystem

/// References (tags) in the store: each `repository:tag` names at most one image, an image may
/// have several. They live in the images' `image.json` (`repoTags`) and change only while the
/// store's lock (`<store>/.lock`, flock) is held, so concurrent imports and removals, from the
/// daemon and from `podshim images`, never lose one another's edits.
extension ImageStore {
    static let lockFile = ".lock"

    /// Runs `body` holding the store's exclusive lock.
    func withReferenceLock<T>(_ body: () throws(ImagePullError) -> T) throws(ImagePullError) -> T {
        let path = directory + "/" + Self.lockFile
        let fd: Int32
        do throws(SystemError) {
            try FileSystem.createDirectory(directory)
            fd = try libcCall("open", path: path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
            try libcCall("flock", path: path) { flock(fd, LOCK_EX) }
        } catch {
            throw .system(error)
        }
        defer { close(fd) }  // releases the lock
        return try body()
    }

    /// The canonical form a tag is stored in: `busybox` → `busybox:latest`,
    /// `docker.io/library/busybox:1.36` → `busybox:1.36`. Throws for ids, digests, paths and names
    /// the reference grammar does not allow.
    static func canonicalTag(_ reference: String) throws(ImagePullError) -> String {
        let tag = ImageReference.normalizedTag(reference)
        guard ImageReference.isValidTagReference(tag) else { throw .invalidName(reference) }
        return tag
    }

    /// The store directory name holding `record` (`<store>/<name>`), nil for records that are not
    /// in this store.
    func directoryName(of record: ImageRecord) -> String? {
        let prefix = directory + "/"
        guard record.directory.hasPrefix(prefix) else { return nil }
        let name = String(record.directory.dropFirst(prefix.count))
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { return nil }
        return name
    }

    /// A free directory name for a new image: `preferred`, or `preferred-<12 hex digits of id>`
    /// when another image already uses it.
    func freeDirectoryName(_ preferred: String, id: String) -> String {
        var info = stat()
        if lstat(imageDirectory(preferred), &info) != 0 { return preferred }
        // The same image, installed there by a concurrent pull since this one began: installing
        // under that name loses the rename to it and returns it, rather than storing a second copy.
        if record(named: preferred)?.id == id { return preferred }
        return preferred + "-" + String(id.dropFirst("sha256:".count).prefix(12))
    }

    /// Points `tag` (canonical) at the image with `id` (caller holds the lock): added to that
    /// image's `repoTags`, removed from every other image's. Returns the updated record, nil when
    /// no image has `id`.
    @discardableResult
    func assignTag(_ tag: String, toImage id: String) throws(ImagePullError) -> ImageRecord? {
        var target: ImageRecord?
        for var record in list() {
            let had = record.repoTags
            if record.id == id {
                if !record.isTagged(tag) { record.repoTags.append(tag) }
                if target == nil { target = record }
            } else {
                record.repoTags.removeAll { ImageReference.normalizedTag($0) == tag }
            }
            if record.repoTags != had { try rewrite(record) }
        }
        return target
    }

    /// Adds `repoDigest` (`registry/repository@sha256:…`, where it was pulled from) to the image
    /// with `id`, which counts as pulled from then on; returns its record, nil when no image has `id`.
    public func addRepoDigest(_ repoDigest: String, toImage id: String) throws(ImagePullError) -> ImageRecord? {
        try withReferenceLock { () throws(ImagePullError) -> ImageRecord? in
            guard var record = list().first(where: { $0.id == id }) else { return nil }
            if !record.repoDigests.contains(repoDigest) || !record.pulled {
                if !record.repoDigests.contains(repoDigest) { record.repoDigests.append(repoDigest) }
                record.pulled = true
                try rewrite(record)
            }
            return record
        }
    }

    /// The image that `tag` (canonical) names, if any.
    func image(taggedAs tag: String) -> ImageRecord? {
        list().first { $0.isTagged(tag) }
    }

    /// Rewrites `record`'s `image.json` (atomically, durably: the store outlives reboots).
    func rewrite(_ record: ImageRecord) throws(ImagePullError) {
        guard let name = directoryName(of: record) else { return }
        let path = imageDirectory(name) + "/" + Self.metadataFile
        do {
            let data = try ImageRecord.makeEncoder().encode(record)
            try FileSystem.writeAtomically(path, String(decoding: data, as: UTF8.self) + "\n")
        } catch let error as SystemError {
            throw .system(error)
        } catch {
            throw .malformedDocument(path: path, detail: "\(error)")
        }
    }

    /// What ``untag(_:)`` did.
    public enum UntagResult: Equatable, Sendable {
        /// The reference was removed; the image keeps its other references.
        case untagged(ImageRecord)
        /// The image itself was removed (it was named by id, or this was its last reference).
        case removed([ImageRecord])
        /// Nothing matched.
        case notFound
    }

    /// `podshim images rm`: a tag is removed from its image, and the image with it when it was the
    /// last one; an id (or unique id prefix) removes the image and all its references.
    public func untag(_ reference: String) throws(ImageRemoveError) -> UntagResult {
        if let tag = try? Self.canonicalTag(reference) { // not a tag (an id or id prefix): looked up below
            do throws(ImagePullError) {
                let result: UntagResult? = try withReferenceLock { () throws(ImagePullError) -> UntagResult? in
                    guard var record = image(taggedAs: tag) else { return nil }
                    record.repoTags.removeAll { ImageReference.normalizedTag($0) == tag }
                    guard !record.repoTags.isEmpty else { return nil }
                    try rewrite(record)
                    return .untagged(record)
                }
                if let result { return result }
            } catch {
                throw .pull(error)
            }
        }
        switch lookup(reference) {
        case .notFound:
            return .notFound
        case .ambiguous(let ids):
            throw .ambiguous(reference: reference, ids: ids)
        case .found(let records):
            try remove(reference)
            return .removed(records)
        }
    }
}
