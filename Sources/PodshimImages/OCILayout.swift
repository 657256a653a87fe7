import Foundation
import Glibc
import PodshimSystem

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`), read with every
/// blob checked against its descriptor's size and sha256 digest before it is used.
public struct OCILayout {
    /// The image an `index.json` entry leads to, resolved down to one manifest.
    struct ResolvedImage {
        /// Digest of the chosen `index.json` entry (an image index or the manifest itself): what a
        /// registry would report as the repository digest.
        var referenceDigest: String
        var manifestDigest: String
        var manifest: OCIManifest
        var configDigest: String
        var configuration: OCIImageConfiguration
    }

    /// Largest manifest, index or config podshim reads into memory.
    static let documentSizeLimit: Int64 = 16 << 20
    /// Image indexes nested deeper than this are refused.
    static let maximumIndexDepth = 4

    let path: String

    /// Opens the layout at `path`, checking its `oci-layout` version.
    init(path: String) throws(ImagePullError) {
        self.path = path
        let markerPath = path + "/" + ImageSource.layoutMarker
        let marker: OCILayoutMarker = try Self.decode(try Self.readFile(markerPath), path: markerPath)
        guard marker.imageLayoutVersion == "1.0.0" else {
            throw .unsupportedLayoutVersion(path: path, version: marker.imageLayoutVersion)
        }
    }

    /// The host's architecture in OCI terms (`amd64`, `arm64`, …), from `uname`.
    public static var hostArchitecture: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "amd64" }
        let machine = withUnsafeBytes(of: names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return "amd64"
        case "aarch64", "arm64": return "arm64"
        case "i386", "i486", "i586", "i686": return "386"
        case let arm where arm.hasPrefix("armv") || arm == "arm": return "arm"
        case "ppc64le": return "ppc64le"
        case "s390x": return "s390x"
        case "riscv64": return "riscv64"
        default: return machine
        }
    }

    // MARK: Choosing the image

    /// The image named `reference` (the `org.opencontainers.image.ref.name` annotation), or the only
    /// image when `reference` is nil, followed through image indexes to the manifest for
    /// linux/``hostArchitecture``, with its manifest and config verified and decoded.
    func resolve(reference: String?) throws(ImagePullError) -> ResolvedImage {
        let indexPath = path + "/index.json"
        let index: OCIIndex = try Self.decode(try Self.readFile(indexPath), path: indexPath)
        guard !index.manifests.isEmpty else { throw .emptyLayout(path) }
        let names = index.manifests.map { $0.refName ?? $0.digest }
        let chosen: OCIDescriptor
        if let reference {
            let matches = index.manifests.filter { $0.refName == reference }
            guard !matches.isEmpty else {
                throw .referenceNotFound(layout: path, reference: reference, available: index.manifests.compactMap(\.refName))
            }
            chosen = matches.count == 1 ? matches[0] : try choosePlatform(matches, in: indexPath)
        } else {
            guard index.manifests.count == 1 else { throw .ambiguousLayout(layout: path, available: names) }
            chosen = index.manifests[0]
        }
        let (manifestDescriptor, manifest) = try resolveManifest(chosen, depth: 0)
        let manifestPath = try blobPath(manifestDescriptor.digest)
        if let type = manifest.config.mediaType, !OCIMediaType.configTypes.contains(type) {
            throw .unsupportedMediaType(path: manifestPath + " (config)", mediaType: type)
        }
        let configPath = try blobPath(manifest.config.digest)
        let configuration: OCIImageConfiguration = try Self.decode(try readBlob(manifest.config), path: configPath)
        return ResolvedImage(referenceDigest: chosen.digest, manifestDigest: manifestDescriptor.digest,
                             manifest: manifest, configDigest: manifest.config.digest, configuration: configuration)
    }

    /// Follows `descriptor` through image indexes to an image manifest.
    private func resolveManifest(
        _ descriptor: OCIDescriptor, depth: Int
    ) throws(ImagePullError) -> (OCIDescriptor, OCIManifest) {
        let blob = try blobPath(descriptor.digest)
        let data = try readBlob(descriptor)
        let mediaType: String
        if let declared = descriptor.mediaType {
            mediaType = declared
        } else {
            let probe: OCIDocumentProbe = try Self.decode(data, path: blob)
            mediaType = probe.mediaType
                ?? (probe.manifests != nil ? OCIMediaType.imageIndex : probe.layers != nil ? OCIMediaType.imageManifest : "(none)")
        }
        if OCIMediaType.indexTypes.contains(mediaType) {
            guard depth < Self.maximumIndexDepth else { throw .indexTooDeep(blob) }
            let index: OCIIndex = try Self.decode(data, path: blob)
            return try resolveManifest(try choosePlatform(index.manifests, in: blob), depth: depth + 1)
        }
        guard OCIMediaType.manifestTypes.contains(mediaType) else {
            throw .unsupportedMediaType(path: blob, mediaType: mediaType)
        }
        return (descriptor, try Self.decode(data, path: blob))
    }

    /// The entry of a multi-platform index for linux on this machine's architecture; an index with
    /// a single entry that names no platform is taken as it is.
    private func choosePlatform(_ entries: [OCIDescriptor], in indexPath: String) throws(ImagePullError) -> OCIDescriptor {
        let architecture = Self.hostArchitecture
        if let match = entries.first(where: { $0.platform?.os == "linux" && $0.platform?.architecture == architecture }) {
            return match
        }
        if entries.count == 1 && entries[0].platform == nil { return entries[0] }
        let available = entries.map { entry -> String in
            guard let platform = entry.platform else { return "unspecified" }
            return [platform.os, platform.architecture, platform.variant].compactMap { $0 }.joined(separator: "/")
        }
        throw .noMatchingPlatform(path: indexPath, wanted: "linux/\(architecture)", available: available)
    }

    // MARK: Blobs

    /// `blobs/sha256/<hex>` for `digest`, which must be a well-formed sha256 digest (so that it
    /// cannot name a path outside the layout).
    func blobPath(_ digest: String) throws(ImagePullError) -> String {
        guard ImageReference.isSHA256Digest(digest) else { throw .unsupportedDigest(path: path, digest: digest) }
        return path + "/blobs/sha256/" + digest.dropFirst("sha256:".count)
    }

    /// Opens the blob of `descriptor` after checking its size and digest; the descriptor is at
    /// offset 0 and belongs to the caller. Later reads go through the same open file, so replacing
    /// the file after the check changes nothing.
    func openVerifiedBlob(_ descriptor: OCIDescriptor) throws(ImagePullError) -> Int32 {
        let blob = try blobPath(descriptor.digest)
        let fd = open(blob, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw .missingBlob(path: blob, digest: descriptor.digest) }
            throw .system(SystemError("open", path: blob, errno: .last))
        }
        var verified = false
        defer { if !verified { close(fd) } }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system(SystemError("fstat", path: blob, errno: .last)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .missingBlob(path: blob, digest: descriptor.digest) }
        guard descriptor.size >= 0, Int64(info.st_size) == descriptor.size else {
            throw .sizeMismatch(path: blob, expected: descriptor.size, actual: UInt64(max(info.st_size, 0)))
        }
        let hashed: (hex: String, size: UInt64)
        do throws(SystemError) {
            hashed = try SHA256.hexDigest(fileDescriptor: fd, path: blob)
        } catch {
            throw .system(error)
        }
        guard hashed.size == UInt64(descriptor.size) else {
            throw .sizeMismatch(path: blob, expected: descriptor.size, actual: hashed.size)
        }
        guard "sha256:" + hashed.hex == descriptor.digest else {
            throw .digestMismatch(path: blob, expected: descriptor.digest, actual: hashed.hex)
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw .system(SystemError("lseek", path: blob, errno: .last)) }
        verified = true
        return fd
    }

    /// The verified content of a small blob (a manifest, index or config).
    func readBlob(_ descriptor: OCIDescriptor) throws(ImagePullError) -> Data {
        let blob = try blobPath(descriptor.digest)
        guard descriptor.size <= Self.documentSizeLimit else {
            throw .malformedDocument(path: blob, detail: "\(descriptor.size) bytes is too large for a manifest or config")
        }
        let fd = try openVerifiedBlob(descriptor)
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            return try handle.readToEnd() ?? Data()
        } catch {
            throw .malformedDocument(path: blob, detail: "\(error)")
        }
    }

    // MARK: JSON

    private static func readFile(_ path: String) throws(ImagePullError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .malformedDocument(path: path, detail: access(path, F_OK) == 0 ? "the file cannot be read" : "no such file")
        }
        return data
    }

    static func decode<T: Decodable>(_ data: Data, path: String) throws(ImagePullError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw .malformedDocument(path: path, detail: describe(error))
        } catch {
            throw .malformedDocument(path: path, detail: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func where_(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            return path.isEmpty ? "" : " at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \"\(key.stringValue)\"\(where_(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription)\(where_(context))"
        case .dataCorrupted(let context): return "not valid JSON\(where_(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
