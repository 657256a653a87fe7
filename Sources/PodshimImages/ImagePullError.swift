import Foundation
import PodshimSystem

/// Why ``ImageStore/pull(_:tagAs:)`` could not bring an image into the store. Every case names the
/// reference or file it is about.
public enum ImagePullError: Error, Equatable, CustomStringConvertible {
    /// A registry reference (or a name that is not in the store): podshim never contacts a registry.
    case remoteNotSupported(String)
    /// The name the image would be stored under is not a valid store name.
    case invalidName(String)
    /// The path does not exist.
    case notFound(String)
    /// The path exists but is not a directory.
    case notADirectory(String)
    /// `oci:` was given for a directory without an `oci-layout` file.
    case notAnOCILayout(String)
    /// `path:ref` was given for a plain directory, which has no references to choose from.
    case referenceOnPlainDirectory(path: String, reference: String)
    /// The `oci-layout` file declares a version other than 1.0.0.
    case unsupportedLayoutVersion(path: String, version: String)
    /// A JSON document of the layout could not be read or decoded.
    case malformedDocument(path: String, detail: String)
    /// No entry of `index.json` carries the requested `org.opencontainers.image.ref.name`.
    case referenceNotFound(layout: String, reference: String, available: [String])
    /// `index.json` lists several images and no reference chose one.
    case ambiguousLayout(layout: String, available: [String])
    /// `index.json` lists no images.
    case emptyLayout(String)
    /// A multi-platform index has no image for this machine.
    case noMatchingPlatform(path: String, wanted: String, available: [String])
    /// Image indexes nest deeper than podshim follows.
    case indexTooDeep(String)
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    case unsupportedDigest(path: String, digest: String)
    /// A descriptor's blob is missing from `blobs/sha256/`.
    case missingBlob(path: String, digest: String)
    /// The blob's size differs from its descriptor's.
    case sizeMismatch(path: String, expected: Int64, actual: UInt64)
    /// The blob's content does not hash to its digest.
    case digestMismatch(path: String, expected: String, actual: String)
    /// A manifest, config or layer of a media type podshim cannot use.
    case unsupportedMediaType(path: String, mediaType: String)
    /// A layer member with an absolute path or a `..` component.
    case unsafeMember(layer: String, member: String)
    /// A helper program (`tar`, `cp`) failed; `stderr` is what it printed.
    case commandFailed(command: String, status: String, stderr: String)
    /// The store already holds a different image under this name.
    case conflict(name: String, existingID: String, newID: String)
    /// A layer blob could not be unpacked (hostile or corrupt tar, wrong digest or DiffID).
    case layer(blob: String, LayerError)
    /// A file system operation failed.
    case system(SystemError)

    public var description: String {
        switch self {
        case .remoteNotSupported(let reference):
            return "image \"\(reference)\" is not in the local store, and podshim never contacts a registry: "
                + "import it first (podshim images import [--image-dir DIR] SRC \(reference), SRC a root filesystem "
                + "directory, an OCI image layout or an OCI image archive), or pull an absolute path "
                + "(/path/to/rootfs, /path/to/layout[:ref], oci:/path/to/layout[:ref])"
        case .invalidName(let name):
            return "image reference \"\(name)\" is not [registry/]repository[:tag] (lowercase path components of "
                + "[a-z0-9._-], a tag of [A-Za-z0-9._-] up to 128 characters)"
        case .notFound(let path):
            return "image source \(path) does not exist"
        case .notADirectory(let path):
            return "image source \(path) is not a directory"
        case .notAnOCILayout(let path):
            return "\(path) is not an OCI image layout (it has no oci-layout file)"
        case .referenceOnPlainDirectory(let path, let reference):
            return "\(path) is a plain directory, not an OCI image layout, so \":\(reference)\" cannot select an image in it"
        case .unsupportedLayoutVersion(let path, let version):
            return "\(path)/oci-layout declares imageLayoutVersion \"\(version)\"; podshim reads only 1.0.0"
        case .malformedDocument(let path, let detail):
            return "cannot read \(path): \(detail)"
        case .referenceNotFound(let layout, let reference, let available):
            return "OCI layout \(layout) has no image named \"\(reference)\" (it has: \(Self.list(available)))"
        case .ambiguousLayout(let layout, let available):
            return "OCI layout \(layout) holds several images (\(Self.list(available))); append :ref to choose one"
        case .emptyLayout(let layout):
            return "OCI layout \(layout) lists no images in index.json"
        case .noMatchingPlatform(let path, let wanted, let available):
            return "image index \(path) has no image for \(wanted) (it has: \(Self.list(available)))"
        case .indexTooDeep(let path):
            return "image index \(path) nests other indexes too deeply"
        case .unsupportedDigest(let path, let digest):
            return "\(path) refers to blob \"\(digest)\"; podshim supports only sha256 digests (64 lowercase hex digits)"
        case .missingBlob(let path, let digest):
            return "blob \(digest) is missing: no file \(path)"
        case .sizeMismatch(let path, let expected, let actual):
            return "blob \(path) is \(actual) bytes, but its descriptor says \(expected)"
        case .digestMismatch(let path, let expected, let actual):
            return "blob \(path) is corrupt: its digest is sha256:\(actual), expected \(expected)"
        case .unsupportedMediaType(let path, let mediaType):
            return "\(path) has media type \"\(mediaType)\", which podshim cannot use"
        case .unsafeMember(let layer, let member):
            return "layer \(layer) contains \"\(member)\", a path outside the image (absolute or with ..)"
        case .commandFailed(let command, let status, let stderr):
            let detail = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(command) failed (\(status))" + (detail.isEmpty ? "" : ": \(detail)")
        case .conflict(let name, let existingID, let newID):
            return "the store already holds a different image as \"\(name)\" (\(existingID), not \(newID)); "
                + "remove it first or choose another name with tagAs"
        case .layer(let blob, let error):
            return "layer \(blob): \(error)"
        case .system(let error):
            return error.description
        }
    }

    private static func list(_ names: [String]) -> String {
        names.isEmpty ? "nothing" : names.joined(separator: ", ")
    }
}
