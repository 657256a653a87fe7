import Foundation
import Glibc
import PodshimSystem

/// `podshim images import`: bringing an image into the store under a reference the user chooses.
extension ImageStore {
    /// Imports `source` as `reference` (`[registry/]repository[:tag]`, `:latest` when untagged) and
    /// returns the image's record. `source` (an absolute path) is one of:
    /// - a root filesystem directory, copied; `config` gives its default process (`Cmd`, `Env`, …);
    /// - an OCI image layout directory (with an `oci-layout` file), `path:ref` choosing one of
    ///   several images in it;
    /// - an OCI image archive: a tar (or gzip'd tar) of such a layout, as `skopeo copy oci-archive:`
    ///   or `docker save` with the containerd store writes it.
    ///
    /// The image id comes from the content (the config digest for OCI images), so importing the
    /// same content under a second reference adds that reference to the stored image instead of
    /// copying it. A reference that named another image moves to this one.
    public func importImage(from source: String, as reference: String, config: ImageConfig? = nil) throws(ImagePullError) -> ImageRecord {
        let tag = try Self.canonicalTag(reference)
        guard source.hasPrefix("/") else { throw .notFound(source) }
        var info = stat()
        if stat(source, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
            return try importArchive(source, tag: tag)
        }
        // Directories, `DIR:REF`, and what does not exist (.notFound) are ImageSource's to tell.
        switch try ImageSource.parse(source) {
        case .stored:
            throw .notFound(source)
        case .directory(let path):
            return try importDirectory(path, tagAs: tag, config: config, moveTag: true)
        case .ociLayout(let path, let ref):
            return try importLayout(path, reference: ref, tagAs: tag, moveTag: true)
        }
    }

    /// Unpacks the archive into a private directory of the store (members checked first: no
    /// absolute names, no `..`), imports the layout found there, and deletes the unpacked copy.
    private func importArchive(_ path: String, tag: String) throws(ImagePullError) -> ImageRecord {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system(SystemError("open", path: path, errno: .last)) }
        defer { close(fd) }
        var magic = [UInt8](repeating: 0, count: 2)
        let compression: LayerCompression = pread(fd, &magic, 2, 0) == 2 && magic == [0x1f, 0x8b] ? .gzip : .none
        let archive = LayerArchive(path: path, fd: fd, compression: compression)
        _ = try archive.checkMembers()
        let unpacked = try ImageStaging(store: directory)
        defer { unpacked.discard() }
        let layout = unpacked.scratch("layout")
        try makeImageDirectory(layout)
        try archive.extract(into: layout)
        var marker = stat()
        guard stat(layout + "/" + ImageSource.layoutMarker, &marker) == 0 else { throw .notAnOCILayout(path) }
        return try importLayout(layout, reference: nil, tagAs: tag, moveTag: true)
    }
}
