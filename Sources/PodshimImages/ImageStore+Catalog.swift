import Foundation
import PodshimSystem

/// Reading the store: CRI `ListImages`, `ImageStatus` and `ImageFsInfo`.
extension ImageStore {
    /// Every image in the store (each `<store>/<name>/rootfs` directory), sorted by first tag.
    public func list() -> [ImageRecord] {
        FileTree.entries(of: directory)
            .filter { !$0.hasPrefix(".") }
            .compactMap { record(named: $0) }
            .sorted { ($0.repoTags.first ?? $0.id, $0.rootfs) < ($1.repoTags.first ?? $1.id, $1.rootfs) }
    }

    /// The image `reference` names, or nil. A reference is, in order of precedence:
    /// - an id: `sha256:<hex>` or the bare 64 hex digits;
    /// - a repository digest: `name@sha256:<hex>`;
    /// - a tag: `busybox`, `busybox:latest` and `docker.io/library/busybox:latest` are one;
    /// - a unique prefix of an id, of at least 12 hex digits (with or without `sha256:`);
    /// - a store name as ``rootfs(for:)`` reads it (`busybox:1.36` → `<store>/busybox_1.36`).
    public func status(_ reference: String) -> ImageRecord? {
        guard case .found(let records) = lookup(reference) else { return nil }
        return records.first
    }

    /// Disk use of the whole store directory (allocated bytes and inodes, as `du` counts them, not
    /// crossing into other file systems), and the store directory as the mountpoint to report.
    public func usage() -> (bytes: UInt64, inodes: UInt64, mountpoint: String) {
        let usage = FileTree.usage(of: directory)
        return (usage.bytes, usage.inodes, directory)
    }

    // MARK: Internals

    /// What a reference resolves to.
    enum Lookup: Equatable {
        /// The matching images: one, or several when one id is stored under several names.
        case found([ImageRecord])
        /// An id prefix shared by several different images.
        case ambiguous([String])
        case notFound
    }

    /// Resolves `reference` as ``status(_:)`` describes.
    func lookup(_ reference: String) -> Lookup {
        guard !reference.isEmpty else { return .notFound }
        let records = list()
        if let hex = ImageReference.idHex(reference) {
            if hex.count == 64 {
                let matches = records.filter { $0.id == "sha256:" + hex }
                if !matches.isEmpty { return .found(matches) }
            }
        }
        if reference.contains("@") {
            let wanted = ImageReference.normalizedTag(reference)
            let matches = records.filter { $0.repoDigests.contains { ImageReference.normalizedTag($0) == wanted } }
            if !matches.isEmpty { return .found(matches) }
        }
        let tag = ImageReference.normalizedTag(reference)
        let tagged = records.filter { $0.isTagged(tag) }
        if !tagged.isEmpty { return .found(tagged) }
        if let hex = ImageReference.idHex(reference), hex.count >= 12 {
            let ids = Set(records.map(\.id).filter { $0.dropFirst("sha256:".count).hasPrefix(hex) })
            if ids.count > 1 { return .ambiguous(ids.sorted()) }
            if let id = ids.first { return .found(records.filter { $0.id == id }) }
        }
        if let name = try? storeName(ImageReference.withoutDefaultRegistry(reference)), // not a valid store name: no image by that name
           let record = records.first(where: { $0.directory == imageDirectory(name) }) {
            return .found([record])
        }
        return .notFound
    }

    /// The record of `<store>/<name>`: its `image.json`, or one made up from the name when there is
    /// none (or it cannot be read) beside a `rootfs` directory. Nil when it is neither a layered
    /// image (a record with layers) nor a directory with `rootfs/`.
    func record(named name: String) -> ImageRecord? {
        let imageDirectory = self.imageDirectory(name)
        let rootfs = imageDirectory + "/rootfs"
        let data = FileManager.default.contents(atPath: imageDirectory + "/" + Self.metadataFile)
        // Unreadable: a record made up from the name, as documented.
        if let data, var record = try? ImageRecord.makeDecoder().decode(ImageRecord.self, from: data) {
            record.directory = imageDirectory
            if !record.layers.isEmpty {
                record.rootfs = lowerDirectories(layers: record.layers).joined(separator: ":")
                return record
            }
            guard isDirectory(rootfs) else { return nil }
            record.rootfs = rootfs  // where it is now, even if the store was moved
            return record
        }
        guard isDirectory(rootfs) else { return nil }
        let record = ImageRecord(id: Self.localID(name), repoTags: [name + ":latest"], size: FileTree.contentSize(of: rootfs),
                                 rootfs: rootfs, directory: imageDirectory)
        // Remember it, so the tree is walked once rather than on every lookup (best effort: a
        // read-only store just walks again).
        if let data = try? ImageRecord.makeEncoder().encode(record) { // cannot fail: strings and integers only
            // Best effort (see above): a read-only store just walks again.
            try? FileSystem.writeAtomically(imageDirectory + "/" + Self.metadataFile, String(decoding: data, as: UTF8.self))
        }
        return record
    }

    private func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The stable id of an image directory without `image.json`.
    static func localID(_ name: String) -> String {
        "sha256:" + SHA256.hexDigest(of: "podshim-local:" + name)
    }
}
