import Foundation
import Glibc
import PodshimSystem

/// Pulling from an OCI image layout directory.
extension ImageStore {
    /// Imports the image `reference` (or the only one) of the OCI layout at `path` into the layer
    /// store: each layer not stored yet is unpacked in process (``unpackLayer(blob:path:chainID:digest:diffID:options:)``),
    /// its blob's digest and DiffID checked as it streams, and the image is recorded as its stack
    /// of ChainIDs. Layers the store already has (from any image) are not read at all.
    /// `moveTag`: see ``adopt(_:id:moveTag:)``.
    func importLayout(_ path: String, reference: String?, tagAs: String?, moveTag: Bool) throws(ImagePullError) -> ImageRecord {
        let layout = try OCILayout(path: path)
        let image = try layout.resolve(reference: reference)
        let name = try storedName(tagAs: tagAs, layoutPath: path, reference: reference)
        // A stored image is returned as it is, unless layers of it have gone (ResolveError.missingLayer,
        // whose advice is to pull again): those are unpacked again below.
        let existing = try adopt(name, id: image.configDigest, moveTag: moveTag)
        if let existing, existing.layers.allSatisfy(hasLayer) { return existing }
        let configPath = try layout.blobPath(image.configDigest)
        let chain = try Self.checkedChain(image.manifest, image.configuration, path: configPath)
        let lease = Self.pullLeasePrefix + UUID().uuidString.lowercased()
        try self.lease(lease, layers: chain)
        defer { release(lease) }
        for (index, descriptor) in image.manifest.layers.enumerated() where !hasLayer(chain[index]) {
            let blob = try layout.blobPath(descriptor.digest)
            guard let mediaType = descriptor.mediaType, OCIMediaType.layerCompression(mediaType) != nil else {
                throw .unsupportedMediaType(path: blob, mediaType: descriptor.mediaType ?? "(none)")
            }
            let fd = open(blob, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw errno == ENOENT ? .missingBlob(path: blob, digest: descriptor.digest) : .system(SystemError("open", path: blob, errno: .last)) }
            defer { close(fd) }
            var info = stat()
            if fstat(fd, &info) == 0, Int64(info.st_size) != descriptor.size {
                throw .sizeMismatch(path: blob, expected: descriptor.size, actual: UInt64(info.st_size))
            }
            try unpackLayer(blob: fd, path: blob, chainID: chain[index], digest: descriptor.digest,
                            diffID: image.configuration.rootfs?.diffIDs[index] ?? "")
        }
        if let existing { return existing }  // whole again; recorded already
        let size = UInt64(max(0, image.manifest.layers.reduce(image.manifest.config.size) { $0 + $1.size }))
        return try installLayered(name, id: image.configDigest, record: ImageRecord(
            id: image.configDigest, repoTags: [name.repoTag], repoDigests: [name.repository + "@" + image.referenceDigest],
            size: size, config: image.configuration.imageConfig, rootfs: "", created: image.configuration.createdDate,
            layers: chain))
    }

    /// The ChainIDs of an image whose config's `rootfs.diff_ids` match its manifest's layers one
    /// for one, every one a sha256 digest.
    public static func checkedChain(_ manifest: OCIManifest, _ configuration: OCIImageConfiguration,
                             path: String) throws(ImagePullError) -> [String] {
        guard let rootfs = configuration.rootfs, rootfs.type == "layers" else {
            throw .malformedDocument(path: path, detail: "the image config has no rootfs of type \"layers\"")
        }
        guard rootfs.diffIDs.count == manifest.layers.count else {
            throw .malformedDocument(path: path, detail: "the config lists \(rootfs.diffIDs.count) DiffIDs for "
                                     + "\(manifest.layers.count) layers in the manifest")
        }
        for digest in rootfs.diffIDs + manifest.layers.map(\.digest) where !ImageReference.isSHA256Digest(digest) {
            throw .unsupportedDigest(path: path, digest: digest)
        }
        return chainIDs(diffIDs: rootfs.diffIDs)
    }

    /// `tagAs`, or the layout directory's base name tagged with the reference (`latest` without
    /// one). A reference that is itself a full image reference (`docker.io/library/alpine:3.19`,
    /// as some tools annotate) gives its last path component and tag instead (`alpine:3.19`).
    func storedName(tagAs: String?, layoutPath: String, reference: String?) throws(ImagePullError) -> StoredName {
        var repository = (layoutPath as NSString).lastPathComponent
        var tag = reference ?? "latest"
        if let reference, reference.contains("/") || reference.contains(":") {
            let split = ImageReference.split(ImageReference.withoutDefaultRegistry(reference))
            repository = (split.repository as NSString).lastPathComponent
            tag = split.tag ?? "latest"
        }
        return try storedName(tagAs: tagAs, repository: repository, tag: tag)
    }
}
