import Foundation

/// Images are stacks of shared layers, or local root filesystems: an absolute directory, or
/// `<store>/<name>/rootfs`.
///
/// Each image of the store is a directory `<store>/<name>` holding `image.json` (an
/// ``ImageRecord``) and, for an image copied from a directory, `rootfs/`. Images from OCI layouts
/// and registries are layers in `<store>/.layers/<ChainID hex>`, each unpacked once and shared by
/// every image that has it (``ImageStore+Layers``). Directories with `rootfs/` and without
/// `image.json`, put there by hand, are images too; their records are made up from the name.
/// The CRI ImageService is ``list()``, ``status(_:)``, ``pull(_:tagAs:)``, ``remove(_:)`` and
/// ``usage()``; nothing in this target contacts a registry (PodshimRegistry does).
public struct ImageStore: Sendable {
    /// The store directory, e.g. `/var/lib/podshim/images`.
    public let directory: String

    /// The name of an image's metadata file in its store directory.
    static let metadataFile = "image.json"

    /// A store rooted at `directory`; nothing is created until an image is pulled.
    public init(directory: String) { self.directory = directory }

    /// `<store>/<name>`: the directory holding an image's `rootfs/` and `image.json`.
    func imageDirectory(_ name: String) -> String { directory + "/" + name }

    /// Why an image reference cannot be used.
    public enum ResolveError: Error, Equatable, CustomStringConvertible {
        case notFound(image: String, looked: String)
        case notADirectory(String)
        case invalidName(String)
        case unusablePath(String)
        case hostPath(String)
        case missingLayer(image: String, chainID: String)

        public var description: String {
            switch self {
            case .notFound(let image, let looked):
                if image.hasPrefix("/") { return "image \"\(image)\" not found (no directory \(looked))" }
                return "image \"\(image)\" is not in the local store (no reference, id or directory \(looked)); "
                    + "pull it (podshim images pull \(image)) or import it (podshim images import SRC \(image))"
            case .notADirectory(let path): return "image \(path) is not a directory"
            case .invalidName(let name):
                return "image \"\(name)\" is not an absolute path or a store name ([A-Za-z0-9._-], optionally with :tag)"
            case .unusablePath(let path):
                return "image path \(path) contains ',' ':' or a newline, which overlayfs options cannot carry"
            case .missingLayer(let image, let chainID):
                return "image \"\(image)\" is incomplete: its layer \(chainID) is not in the layer store; pull the image again"
            case .hostPath(let path):
                return "\"\(path)\" is a host path, not an image reference: over the CRI an image is a reference or id "
                    + "in the store (import a directory with: podshim images import)"
            }
        }
    }

    /// The root filesystem directory for `image`: an absolute path as it is, else a reference
    /// (`busybox`, `registry.example/app:1.0`), an image id or a store directory name.
    public func rootfs(for image: String) throws(ResolveError) -> String {
        try resolve(image).rootfs
    }

    /// What `image` names, as ``rootfs(for:)`` reads it, with the store's record of it (nil for
    /// an absolute path): one lookup for both the root filesystem and the image config.
    public func resolve(_ image: String) throws(ResolveError) -> (rootfs: String, record: ImageRecord?) {
        let path: String
        if image.hasPrefix("/") {
            path = image
        } else if case .found(let records) = lookup(image), let record = records.first {
            if !record.layers.isEmpty {
                for (layer, lower) in zip(record.layers, lowerDirectories(layers: record.layers).reversed()) {
                    var info = stat()
                    guard stat(lower, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                        throw .missingLayer(image: image, chainID: layer)
                    }
                }
                return (record.rootfs, record)
            }
            return (try checkedRootfs(record.rootfs, image: image), record)
        } else {
            // Store directory names have no `/`: a reference with one is simply not here.
            if image.contains("/") && ImageReference.isValidTagReference(image) {
                throw .notFound(image: image, looked: directory + "/" + image.replacingOccurrences(of: "/", with: "_") + "/rootfs")
            }
            path = directory + "/" + (try storeName(image)) + "/rootfs"
        }
        return (try checkedRootfs(path, image: image), nil)
    }

    /// ``resolve(_:)`` for images named by a remote client (the CRI): a reference or image id in
    /// the store, never a host path — a kubelet's image is never `/`, and a host directory becomes
    /// an image only through `podshim images import`, a deliberate command.
    public func resolveStored(_ image: String) throws(ResolveError) -> (rootfs: String, record: ImageRecord) {
        guard !Self.isHostPath(image) else { throw .hostPath(image) }
        let resolved = try resolve(image)
        guard let record = resolved.record else { throw .notFound(image: image, looked: directory) }
        return (resolved.rootfs, record)
    }

    /// An absolute path or an `oci:` layout: what only the command line may name as an image.
    public static func isHostPath(_ image: String) -> Bool {
        image.hasPrefix("/") || image.hasPrefix("oci:") || image.hasPrefix(".")
    }

    /// `path` when overlayfs can take it as a lower directory and it is a directory.
    private func checkedRootfs(_ path: String, image: String) throws(ResolveError) -> String {
        if path.contains(",") || path.contains(":") || path.contains("\n") { throw .unusablePath(path) }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .notFound(image: image, looked: path)
        }
        guard isDirectory.boolValue else { throw .notADirectory(path) }
        return path
    }

    /// `busybox` and `busybox:latest` name the same directory; `busybox:1.36` names `busybox_1.36`.
    func storeName(_ image: String) throws(ResolveError) -> String {
        var name = image
        if name.hasSuffix(":latest") { name.removeLast(":latest".count) }
        name = name.replacingOccurrences(of: ":", with: "_")
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, !name.hasPrefix("."), name.allSatisfy(allowed.contains) else {
            throw .invalidName(image)
        }
        return name
    }
}
