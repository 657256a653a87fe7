import Glibc

/// Where ``ImageStore/pull(_:tagAs:)`` takes an image from, decided from the reference and what
/// is on disk.
enum ImageSource: Equatable {
    /// Not a path: only an image already in the store can match (by tag, id or digest).
    case stored(String)
    /// A plain root filesystem directory, to be copied.
    case directory(path: String)
    /// An OCI image layout, and the `org.opencontainers.image.ref.name` to choose, if given.
    case ociLayout(path: String, reference: String?)

    /// The file that marks a directory as an OCI image layout.
    static let layoutMarker = "oci-layout"

    /// Classifies `reference`:
    /// - `oci:/path[:ref]` → an OCI layout (the directory must have an `oci-layout` file);
    /// - `/path` → an OCI layout when it has `oci-layout`, else a plain directory;
    /// - `/path:ref` → an OCI layout at `/path` (when `/path:ref` itself is not a directory);
    /// - anything else → ``stored(_:)``.
    static func parse(_ reference: String) throws(ImagePullError) -> ImageSource {
        if reference.hasPrefix("oci:") {
            let rest = String(reference.dropFirst("oci:".count))
            guard rest.hasPrefix("/") else { throw .remoteNotSupported(reference) }
            let (path, ref) = try splitExisting(rest)
            guard isFile(path + "/" + layoutMarker) else { throw .notAnOCILayout(path) }
            return .ociLayout(path: path, reference: ref)
        }
        guard reference.hasPrefix("/") else { return .stored(reference) }
        let (path, ref) = try splitExisting(reference)
        if isFile(path + "/" + layoutMarker) { return .ociLayout(path: path, reference: ref) }
        if let ref { throw .referenceOnPlainDirectory(path: path, reference: ref) }
        return .directory(path: path)
    }

    /// `path` and the `:ref` after it: the whole string when it is an existing directory, else split
    /// at the first colon. Trailing slashes are dropped. Throws when no directory is there.
    private static func splitExisting(_ reference: String) throws(ImagePullError) -> (String, String?) {
        let whole = trimmed(reference)
        if isDirectory(whole) { return (whole, nil) }
        if let colon = reference.firstIndex(of: ":") {
            let path = trimmed(String(reference[..<colon]))
            let ref = String(reference[reference.index(after: colon)...])
            if isDirectory(path) { return (path, ref.isEmpty ? nil : ref) }
            if exists(path) { throw .notADirectory(path) }
            if !exists(whole) { throw .notFound(path) }
        }
        if exists(whole) { throw .notADirectory(whole) }
        throw .notFound(whole)
    }

    private static func trimmed(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    private static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// A directory, or a symbolic link to one.
    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private static func isFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
