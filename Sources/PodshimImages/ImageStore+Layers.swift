import Foundation
import Glibc
import PodshimSystem

/// The shared layer store: `<store>/.layers/<hex>`, one directory per layer keyed by its ChainID
/// (image-spec config.md), unpacked once in overlay form (``LayerApplier``) and shared by every
/// image whose stack has it. A container's root filesystem is an overlay of its image's layer
/// directories, top first, plus its own upper directory: no image is ever copied per container.
///
/// A layer appears with one `rename` from a private directory (`.layers/.tmp-<uuid>`), after a
/// `syncfs`, so no reader sees half a layer and a pull killed half-way leaves only a temporary
/// directory that ``removeLeftovers()`` deletes. Layers are deleted only by ``collectGarbage()``,
/// which keeps every layer that an image record or a lease names: containers lease the layers
/// they mount (``lease(_:layers:)``), and pulls lease theirs before the first one is unpacked.
extension ImageStore {
    static let layersName = ".layers"
    static let leasesName = ".leases"
    static let temporaryLayerPrefix = ".tmp-"

    /// `<store>/.layers`.
    public var layersDirectory: String { directory + "/" + Self.layersName }

    /// `<store>/.layers/<hex>` for `chainID` (`sha256:<hex>`).
    public func layerDirectory(_ chainID: String) -> String {
        layersDirectory + "/" + String(chainID.dropFirst("sha256:".count))
    }

    /// The directories of `layers` (ChainIDs, lowest first) as overlayfs stacks them: top first.
    public func lowerDirectories(layers: [String]) -> [String] {
        layers.reversed().map(layerDirectory)
    }

    /// ChainIDs of a stack of DiffIDs (lowest first): ChainID(L0) = DiffID(L0),
    /// ChainID(L0…Ln) = sha256 of `ChainID(L0…Ln-1) + " " + DiffID(Ln)`.
    public static func chainIDs(diffIDs: [String]) -> [String] {
        var chain: [String] = []
        for diffID in diffIDs {
            if let below = chain.last {
                chain.append("sha256:" + SHA256.hexDigest(of: below + " " + diffID))
            } else {
                chain.append(diffID)
            }
        }
        return chain
    }

    /// Whether the layer `chainID` is unpacked in the store.
    public func hasLayer(_ chainID: String) -> Bool {
        var info = stat()
        return stat(layerDirectory(chainID), &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Unpacks the layer blob open at `fd` (`path` for messages) as layer `chainID`, checking the
    /// blob's `digest` (when given) and its `diffID` while it streams. Returns nil, unpacking
    /// nothing, when the layer is already there (another image, or a concurrent pull, has it).
    /// On any error nothing of the layer is left.
    @discardableResult
    public func unpackLayer(blob fd: Int32, path: String, chainID: String, digest: String?, diffID: String,
                            options: LayerApplier.Options = LayerApplier.Options()) throws(ImagePullError) -> LayerApplySummary? {
        guard ImageReference.isSHA256Digest(chainID), ImageReference.isSHA256Digest(diffID) else {
            throw .unsupportedDigest(path: path, digest: ImageReference.isSHA256Digest(chainID) ? diffID : chainID)
        }
        if hasLayer(chainID) { return nil }
        let temporary = layersDirectory + "/" + Self.temporaryLayerPrefix + UUID().uuidString.lowercased()
        do throws(SystemError) {
            try FileSystem.createDirectory(layersDirectory)
            try libcCall("mkdir", path: temporary) { mkdir(temporary, 0o755) }
            try libcCall("chmod", path: temporary) { chmod(temporary, 0o755) }
        } catch {
            throw .system(error)
        }
        var committed = false
        defer { if !committed { try? LayerApplier.removeLayerDirectory(temporary) } } // best effort: a leftover .tmp- is removed at start-up
        let summary: LayerApplySummary
        do throws(LayerError) {
            summary = try LayerApplier.apply(blob: fd, path: path, into: temporary, expectedDigest: digest,
                                             expectedDiffID: diffID, options: options)
        } catch {
            throw .layer(blob: digest ?? path, error)
        }
        let target = layerDirectory(chainID)
        do throws(SystemError) {
            // One syncfs makes every file of the layer durable before it becomes visible.
            let directoryFD = try libcCall("open", path: temporary) { open(temporary, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(directoryFD) }
            let synced = LayerSyscalls.syncFileSystem(directoryFD)
            if synced < 0 { throw SystemError("syncfs", path: temporary, errno: Errno(rawValue: -synced)) }
            if rename(temporary, target) != 0 {
                if errno == EEXIST || errno == ENOTEMPTY { return nil }  // a concurrent pull got there first
                throw SystemError("rename", path: target, errno: .last)
            }
            committed = true
            try FileSystem.syncDirectory(layersDirectory)
        } catch {
            throw .system(error)
        }
        return summary
    }

    /// The contents of `path` (relative, e.g. `etc/passwd`) as a container of the image would see
    /// it through the overlay of `lowerDirectories` (top first): the topmost layer that has the
    /// path gives it, and hides it in the layers below; a whiteout (a 0/0 character device) of it
    /// or of a parent directory in a layer above hides it, and so does a parent that is not a
    /// directory; an opaque parent directory hides everything below its layer. Symbolic links
    /// are followed inside the layer only. Nil when absent, not a regular file (a FIFO is never
    /// opened for reading, which could block), or larger than `limit` bytes.
    public static func readImageFile(_ path: String, lowerDirectories: [String], limit: Int = 4 << 20) -> String? {
        let components = path.split(separator: "/").map(String.init)
        guard !components.isEmpty, !components.contains("..") else { return nil }
        for layer in lowerDirectories {
            var prefix = layer
            var opaque = false
            for (index, component) in components.enumerated() {
                prefix += "/" + component
                var info = stat()
                guard lstat(prefix, &info) == 0 else { break }
                let type = info.st_mode & S_IFMT
                if type == S_IFCHR && info.st_rdev == 0 { return nil }  // whiteout
                guard index < components.count - 1 else { break }
                // A parent that is neither a directory nor a link to follow has nothing below it,
                // and hides what lower layers have there.
                if type != S_IFDIR && type != S_IFLNK { return nil }
                if type == S_IFDIR, isOpaque(prefix) { opaque = true }
            }
            // The topmost layer that has the path decides, whatever it is there.
            if let resolved = FileSystem.resolved(layer + "/" + path, inside: layer) {
                return readRegularFile(resolved, limit: limit)
            }
            if opaque { return nil }
        }
        return nil
    }

    /// The text of the regular file at `path` (symbolic links resolved already), at most `limit`
    /// bytes; nil for anything else. Nothing but a regular file is opened.
    private static func readRegularFile(_ path: String, limit: Int) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= limit else { return nil }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // Checked again on what was opened: the path may have been replaced since.
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count <= limit {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return nil }
            if count == 0 { break }
            bytes += buffer[..<count]
        }
        return bytes.count <= limit ? String(decoding: bytes, as: UTF8.self) : nil
    }

    private static func isOpaque(_ directory: String) -> Bool {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return ["trusted.overlay.opaque", "user.overlay.opaque"].contains { name in
            if case .success(let value) = LayerSyscalls.getXattr(fd, name: name) { return value == [UInt8(ascii: "y")] }
            return false
        }
    }

    // MARK: Leases

    /// Records that `holder` (a container id, `pull-<uuid>`) uses `layers`, so that
    /// ``collectGarbage()`` keeps them even when no image names them any more.
    public func lease(_ holder: String, layers: [String]) throws(ImagePullError) {
        guard !holder.isEmpty, !holder.hasPrefix("."), !holder.contains("/") else { throw .invalidName(holder) }
        let leases = directory + "/" + Self.leasesName
        do throws(SystemError) {
            try FileSystem.createDirectory(leases)
            try FileSystem.writeAtomically(leases + "/" + holder, layers.joined(separator: "\n") + "\n")
        } catch {
            throw .system(error)
        }
    }

    /// Ends `holder`'s lease; nothing when it has none.
    public func release(_ holder: String) {
        guard !holder.isEmpty, !holder.hasPrefix("."), !holder.contains("/") else { return }
        _ = unlink(directory + "/" + Self.leasesName + "/" + holder)
    }

    /// Every lease: holder → ChainIDs.
    public func leases() -> [String: [String]] {
        let leases = directory + "/" + Self.leasesName
        var result: [String: [String]] = [:]
        for holder in FileTree.entries(of: leases) where !holder.hasPrefix(".") {
            guard let data = FileManager.default.contents(atPath: leases + "/" + holder) else { continue }
            result[holder] = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        return result
    }

    // MARK: Garbage collection

    /// What ``collectGarbage(measure:)`` freed.
    public struct GarbageCollection: Equatable, Sendable {
        /// ChainIDs of the layers removed.
        public var removedLayers: [String]
        /// Allocated bytes they used (0 unless measured).
        public var freedBytes: UInt64
    }

    /// Removes every layer that no image record and no lease names. Listing the layers comes
    /// before reading the records and leases: a pull leases its layers before unpacking them, so
    /// a layer that appears while this runs is either not listed or already leased.
    /// `measure`: count the bytes freed (a walk of each removed layer first).
    @discardableResult
    public func collectGarbage(measure: Bool = false) throws(ImageRemoveError) -> GarbageCollection {
        let present = FileTree.entries(of: layersDirectory).filter { !$0.hasPrefix(".") }
        guard !present.isEmpty else { return GarbageCollection(removedLayers: [], freedBytes: 0) }
        var kept = Set<String>()
        do throws(ImagePullError) {
            try withReferenceLock { () throws(ImagePullError) in
                for record in list() { kept.formUnion(record.layers) }
                for layers in leases().values { kept.formUnion(layers) }
            }
        } catch {
            throw .pull(error)
        }
        var collection = GarbageCollection(removedLayers: [], freedBytes: 0)
        for hex in present where !kept.contains("sha256:" + hex) {
            let path = layersDirectory + "/" + hex
            let doomed = layersDirectory + "/" + Self.removingPrefix + UUID().uuidString.lowercased()
            let bytes = measure ? FileTree.usage(of: path).bytes : 0
            guard rename(path, doomed) == 0 else { continue }  // removed concurrently
            do throws(SystemError) {
                try LayerApplier.removeLayerDirectory(doomed)
            } catch {
                throw .system(error)
            }
            collection.removedLayers.append("sha256:" + hex)
            collection.freedBytes += bytes
        }
        return collection
    }
}
