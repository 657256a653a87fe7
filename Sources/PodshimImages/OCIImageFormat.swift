import Foundation

/// The JSON documents of an OCI image layout (image-spec v1), and the Docker schema 2 equivalents
/// that OCI layouts written by older tools contain. Decoding only; no file access here.
public enum OCIMediaType {
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    public static let indexTypes: Set = [imageIndex, dockerManifestList]
    public static let manifestTypes: Set = [imageManifest, dockerManifest]
    public static let configTypes: Set = [imageConfig, dockerConfig]

    /// How a layer blob is compressed, or nil when podshim cannot extract that media type.
    public static func layerCompression(_ mediaType: String) -> LayerCompression? {
        switch mediaType {
        case "application/vnd.oci.image.layer.v1.tar",
             "application/vnd.oci.image.layer.nondistributable.v1.tar":
            return LayerCompression.none
        case "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            return .gzip
        case "application/vnd.oci.image.layer.v1.tar+zstd",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
             "application/vnd.docker.image.rootfs.diff.tar.zstd":
            return .zstd
        case "application/vnd.docker.image.rootfs.diff.tar",
             "application/vnd.docker.image.rootfs.foreign.diff.tar":
            return LayerCompression.none
        default:
            return nil
        }
    }
}

/// A layer tarball's compression.
public enum LayerCompression: Equatable, Sendable {
    case none
    case gzip
    case zstd
}

/// The `oci-layout` file at the root of a layout.
struct OCILayoutMarker: Codable, Equatable {
    public var imageLayoutVersion: String
}

/// The platform an index entry is for.
public struct OCIPlatform: Codable, Equatable, Sendable {
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }
}

/// A reference to a blob: its media type, digest and size, and for index entries its platform
/// and annotations.
public struct OCIDescriptor: Codable, Equatable, Sendable {
    public var mediaType: String?
    public var digest: String
    public var size: Int64
    public var annotations: [String: String]?
    public var platform: OCIPlatform?

    /// The annotation naming an index entry in a layout, e.g. `3.19`.
    public static let refNameAnnotation = "org.opencontainers.image.ref.name"

    public var refName: String? { annotations?[Self.refNameAnnotation] }

    public init(mediaType: String?, digest: String, size: Int64, annotations: [String: String]? = nil,
         platform: OCIPlatform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

/// `index.json`, or a nested image index (a multi-platform image).
public struct OCIIndex: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [OCIDescriptor]
}

/// An image manifest: one config and the layers, lowest first.
public struct OCIManifest: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: OCIDescriptor
    public var layers: [OCIDescriptor]
}

/// Enough of any manifest-like document to tell what it is when its descriptor has no media type.
public struct OCIDocumentProbe: Decodable {
    public var mediaType: String?
    public var manifests: [OCIDescriptor]?
    public var layers: [OCIDescriptor]?
}

/// The image configuration blob; only the parts podshim uses.
public struct OCIImageConfiguration: Codable, Equatable {
    /// The process defaults; Docker's capitalised keys, which OCI kept.
    public struct Process: Codable, Equatable {
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var env: [String]?
        public var workingDir: String?
        public var user: String?

        enum CodingKeys: String, CodingKey {
            case entrypoint = "Entrypoint", cmd = "Cmd", env = "Env", workingDir = "WorkingDir", user = "User"
        }

        public init(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil,
             workingDir: String? = nil, user: String? = nil) {
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.env = env
            self.workingDir = workingDir
            self.user = user
        }
    }

    /// `rootfs`: the layers' DiffIDs, lowest first.
    public struct RootFS: Codable, Equatable {
        public var type: String
        public var diffIDs: [String]

        enum CodingKeys: String, CodingKey { case type, diffIDs = "diff_ids" }
    }

    public var created: String?
    public var architecture: String?
    public var os: String?
    public var config: Process?
    public var rootfs: RootFS?

    public init(created: String? = nil, architecture: String? = nil, os: String? = nil, config: Process? = nil,
         rootfs: RootFS? = nil) {
        self.created = created
        self.architecture = architecture
        self.os = os
        self.config = config
        self.rootfs = rootfs
    }

    /// The process defaults as the store records them (empty strings count as unset).
    public var imageConfig: ImageConfig {
        ImageConfig(entrypoint: config?.entrypoint ?? [], cmd: config?.cmd ?? [], env: config?.env ?? [],
                    workingDir: config?.workingDir.flatMap { $0.isEmpty ? nil : $0 },
                    user: config?.user.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// `created` as a date (RFC 3339, with or without fractional seconds), truncated to whole
    /// seconds so that it survives `image.json`'s ISO 8601 encoding unchanged.
    public var createdDate: Date? {
        guard let created else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var date = formatter.date(from: created)
        if date == nil {
            formatter.formatOptions = [.withInternetDateTime]
            date = formatter.date(from: created)
        }
        if date == nil, let dot = created.firstIndex(of: ".") {
            // Nanosecond fractions, as Go writes them, are more digits than the formatter takes.
            let zone = created[dot...].firstIndex { $0 == "Z" || $0 == "+" || $0 == "-" }
            date = formatter.date(from: String(created[..<dot]) + (zone.map { String(created[$0...]) } ?? "Z"))
        }
        return date.map { Date(timeIntervalSince1970: $0.timeIntervalSince1970.rounded(.down)) }
    }
}
