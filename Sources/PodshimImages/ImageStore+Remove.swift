import Foundation
import Glibc
import PodshimSystem

/// Deleting images: CRI `RemoveImage`.
extension ImageStore {
    /// Removes the image `reference` names (any form ``status(_:)`` accepts): its directory
    /// `<store>/<name>`, root filesystem and metadata. An id removes every name stored with that id.
    /// Removing an image that is not there is not an error.
    ///
    /// The directory is first renamed to a hidden name, so it leaves ``list()`` at once and whole,
    /// then deleted. Containers still using the root filesystem are the caller's concern.
    public func remove(_ reference: String) throws(ImageRemoveError) {
        let records: [ImageRecord]
        switch lookup(reference) {
        case .notFound: return
        case .ambiguous(let ids): throw .ambiguous(reference: reference, ids: ids)
        case .found(let found): records = found
        }
        for record in records {
            guard let name = directoryName(of: record) else { continue }
            let imageDirectory = self.imageDirectory(name)
            let doomed = directory + "/" + Self.removingPrefix + UUID().uuidString.lowercased()
            if rename(imageDirectory, doomed) != 0 {
                if errno == ENOENT { continue }  // removed concurrently
                throw .system(SystemError("rename", path: imageDirectory, errno: .last))
            }
            do throws(SystemError) {
                try FileSystem.removeTree(doomed)
            } catch {
                throw .system(error)
            }
        }
    }

    /// Deletes what interrupted pulls and removals left behind (`<store>/.staging-*` and
    /// `<store>/.removing-*`) and returns their paths. Only safe while no pull or removal is
    /// running, e.g. when the daemon starts.
    @discardableResult
    public func removeLeftovers() throws(ImageRemoveError) -> [String] {
        var leftovers = FileTree.entries(of: directory)
            .filter { $0.hasPrefix(ImageStaging.prefix) || $0.hasPrefix(Self.removingPrefix) }
            .map { directory + "/" + $0 }
        leftovers += FileTree.entries(of: layersDirectory)
            .filter { $0.hasPrefix(Self.temporaryLayerPrefix) || $0.hasPrefix(Self.removingPrefix) }
            .map { layersDirectory + "/" + $0 }
        leftovers += FileTree.entries(of: directory + "/" + Self.ingestName).map { directory + "/" + Self.ingestName + "/" + $0 }
        for holder in leases().keys where holder.hasPrefix(Self.pullLeasePrefix) { release(holder) }
        for path in leftovers {
            do throws(SystemError) {
                try LayerApplier.removeLayerDirectory(path)
            } catch {
                throw .system(error)
            }
        }
        return leftovers
    }

    /// `<store>/.ingest`: blobs being downloaded.
    public static let ingestName = ".ingest"
    /// Leases of pulls in flight are `pull-<uuid>`.
    public static let pullLeasePrefix = "pull-"

    /// The hidden name an image directory is renamed to while it is deleted.
    static let removingPrefix = ".removing-"
}
