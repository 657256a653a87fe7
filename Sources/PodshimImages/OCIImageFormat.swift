import Foundation

/// The JSON documents of an OCI image layout (image-spec v1), and the Docker schema 2 equivalents
/// that OCI layouts written by older tools contain. Decoding only; no file access here.
enum OCIMediaType {
    static let imageIndex = "application/vnd.oci.image.index.v1+json"
    static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    static let imageConfig = "application/vnd.oci.image.config.v1+json"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerConfig = "application/vnd.docker.container.image.v1+json"

    static let indexTypes: Set = [imageIndex, dockerManifestList]
    static let manifestTypes: Set = [imageManifest, dockerManifest]
    static let configTypes: Set = [imageConfig, dockerConfig]

    /// How a layer blob is compressed, or nil when podshim cannot extract that media type.
    static func layerCompression(_ mediaType: String) -> LayerCompression? {
        switch mediaType {
        case "application/vnd.oci.image.layer.v1.tar",
             "application/vnd.oci.image.layer.nondistributable.v1.tar":
            return LayerCompression.none
        case "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            return .gzip
        default:
            return nil
        }
    }
}

/// A layer tarball's compression.
enum LayerCompression: Equatable, Sendable {
    case none
    case gzip
}

/// The `oci-layout` file at the root of a layout.
struct OCILayoutMarker: Codable, Equatable {
    var imageLayoutVersion: String
}

/// The platform an index entry is for.
struct OCIPlatform: Codable, Equatable {
    var architecture: String
    var os: String
    var variant: String?
}

/// A reference to a blob: its media type, digest and size, and for index entries its platform
/// and annotations.
struct OCIDescriptor: Codable, Equatable {
    var mediaType: String?
    var digest: String
    var size: Int64
    var annotations: [String: String]?
    var platform: OCIPlatform?

    /// The annotation naming an index entry in a layout, e.g. `3.19`.
    static let refNameAnnotation = "org.opencontainers.image.ref.name"

    var refName: String? { annotations?[Self.refNameAnnotation] }

    init(mediaType: String?, digest: String, size: Int64, annotations: [String: String]? = nil,
         platform: OCIPlatform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.annotations = annotations
        self.platform = platform
    }
}

/// `index.json`, or a nested image index (a multi-platform image).
struct OCIIndex: Codable, Equatable {
    var schemaVersion: Int
    var mediaType: String?
    var manifests: [OCIDescriptor]
}

/// An image manifest: one config and the layers, lowest first.
struct OCIManifest: Codable, Equatable {
    var schemaVersion: Int
    var mediaType: String?
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
}

/// Enough of any manifest-like document to tell what it is when its descriptor has no media type.
struct OCIDocumentProbe: Decodable {
    var mediaType: String?
    var manifests: [OCIDescriptor]?
    var layers: [OCIDescriptor]?
}

/// The image configuration blob; only the parts podshim uses.
struct OCIImageConfiguration: Codable, Equatable {
    /// The process defaults; Docker's capitalised keys, which OCI kept.
    struct Process: Codable, Equatable {
        var entrypoint: [String]?
        var cmd: [String]?
        var env: [String]?
        var workingDir: String?
        var user: String?

        enum CodingKeys: String, CodingKey {
            case entrypoint = "Entrypoint", cmd = "Cmd", env = "Env", workingDir = "WorkingDir", user = "User"
        }

        init(entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil,
             workingDir: String? = nil, user: String? = nil) {
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.env = env
            self.workingDir = workingDir
            self.user = user
        }
    }

    var created: String?
    var architecture: String?
    var os: String?
    var config: Process?

    init(created: String? = nil, architecture: String? = nil, os: String? = nil, config: Process? = nil) {
        self.created = created
        self.architecture = architecture
        self.os = os
        self.config = config
    }

    /// The process defaults as the store records them (empty strings count as unset).
    var imageConfig: ImageConfig {
        ImageConfig(entrypoint: config?.entrypoint ?? [], cmd: config?.cmd ?? [], env: config?.env ?? [],
                    workingDir: config?.workingDir.flatMap { $0.isEmpty ? nil : $0 },
                    user: config?.user.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// `created` as a date (RFC 3339, with or without fractional seconds), truncated to whole
    /// seconds so that it survives `image.json`'s ISO 8601 encoding unchanged.
    var createdDate: Date? {
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
