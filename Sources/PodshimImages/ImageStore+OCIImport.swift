import Foundation
import Glibc
import PodshimSystem

/// Pulling from an OCI image layout directory.
extension ImageStore {
    /// Imports the image `reference` (or the only one) of the OCI layout at `path`: every blob is
    /// verified and every layer's member names checked before anything is extracted; each layer is
    /// then extracted into its own scratch directory and merged onto the root filesystem with its
    /// whiteouts applied.
    /// `moveTag`: see ``adopt(_:id:moveTag:)``.
    func importLayout(_ path: String, reference: String?, tagAs: String?, moveTag: Bool) throws(ImagePullError) -> ImageRecord {
        let layout = try OCILayout(path: path)
        let image = try layout.resolve(reference: reference)
        let name = try storedName(tagAs: tagAs, layoutPath: path, reference: reference)
        if let existing = try adopt(name, id: image.configDigest, moveTag: moveTag) { return existing }

        var layers: [(archive: LayerArchive, hasRoot: Bool)] = []
        defer { for layer in layers { close(layer.archive.fd) } }
        for descriptor in image.manifest.layers {
            let blob = try layout.blobPath(descriptor.digest)
            guard let mediaType = descriptor.mediaType, let compression = OCIMediaType.layerCompression(mediaType) else {
                throw .unsupportedMediaType(path: blob, mediaType: descriptor.mediaType ?? "(none)")
            }
            let fd = try layout.openVerifiedBlob(descriptor)
            let archive = LayerArchive(path: blob, fd: fd, compression: compression)
            layers.append((archive, false))
            layers[layers.count - 1].hasRoot = try archive.checkMembers()
        }

        return try install(name, id: image.configDigest) { staging, rootfs throws(ImagePullError) in
            try makeImageDirectory(staging.rootfs)
            for (index, layer) in layers.enumerated() {
                let scratch = staging.scratch("layer-\(index)")
                try makeImageDirectory(scratch)
                try layer.archive.extract(into: scratch)
                try LayerMerge.apply(layer: scratch, onto: staging.rootfs, rootMetadata: layer.hasRoot)
                do throws(SystemError) {
                    try FileSystem.removeTree(scratch)
                } catch {
                    throw .system(error)
                }
            }
            return ImageRecord(
                id: image.configDigest, repoTags: [name.repoTag],
                repoDigests: [name.repository + "@" + image.referenceDigest],
                size: FileTree.contentSize(of: staging.rootfs), config: image.configuration.imageConfig,
                rootfs: rootfs, created: image.configuration.createdDate)
        }
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
