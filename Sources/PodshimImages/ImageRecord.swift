import Foundation

/// What the image's config says a container runs by default (OCI `config.Entrypoint` and friends).
public struct ImageConfig: Codable, Sendable, Equatable {
    /// The OCI `Entrypoint`: the executable and its leading arguments; empty when the image has none.
    public var entrypoint: [String]
    /// The OCI `Cmd`: default arguments (or the command, when there is no entrypoint).
    public var cmd: [String]
    /// `NAME=value` pairs.
    public var env: [String]
    /// The working directory, when the image sets one.
    public var workingDir: String?
    /// `user`, `uid`, `user:group` or `uid:gid`, when the image sets one.
    public var user: String?

    /// Settings as given; everything unset by default.
    public init(entrypoint: [String] = [], cmd: [String] = [], env: [String] = [],
                workingDir: String? = nil, user: String? = nil) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
    }

    private enum CodingKeys: String, CodingKey { case entrypoint, cmd, env, workingDir, user }

    /// Missing lists decode as empty, so hand-written or older `image.json` files stay readable.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entrypoint = try container.decodeIfPresent([String].self, forKey: .entrypoint) ?? []
        cmd = try container.decodeIfPresent([String].self, forKey: .cmd) ?? []
        env = try container.decodeIfPresent([String].self, forKey: .env) ?? []
        workingDir = try container.decodeIfPresent(String.self, forKey: .workingDir)
        user = try container.decodeIfPresent(String.self, forKey: .user)
    }
}

/// One image in the local store: what CRI `ListImages` and `ImageStatus` report, and where its
/// root filesystem is. Stored as `<store>/<name>/image.json`, beside `<store>/<name>/rootfs` for an
/// image copied from a directory; an image from a registry or an OCI layout has no directory of
/// its own but a stack of shared layers (``layers``, in `<store>/.layers/`).
public struct ImageRecord: Codable, Sendable, Equatable {
    /// `sha256:` and 64 lowercase hex digits: the config digest for OCI images, otherwise a digest
    /// over a stable description of the image.
    public var id: String
    /// Tags such as `busybox:latest`.
    public var repoTags: [String]
    /// `<repository>@sha256:…`: the digest the image was pulled by (the index's for a multi-platform image).
    public var repoDigests: [String]
    /// Bytes: for a layered image, its manifest, config and compressed layers (what a registry
    /// serves, as containerd counts); for a directory image, its files and symbolic links.
    public var size: UInt64
    /// The image's default process settings.
    public var config: ImageConfig
    /// What overlayfs takes as `lowerdir`: the image's own root filesystem directory (absolute), or
    /// its layers' directories, top first, joined by `:`. Set by the store when it reads the record.
    public var rootfs: String
    /// When the image was built, when known.
    public var created: Date?
    /// The ChainIDs of the image's layers, lowest first (image-spec config.md); empty for an image
    /// copied from a directory.
    public var layers: [String]
    /// The store directory holding `image.json` (`<store>/<name>`); set by the store when it reads the record.
    public var directory: String
    /// Whether the image came from a registry (its `repoDigests` then name where); an image
    /// imported by hand is used as it is by PullImage, never looked for in a registry.
    public var pulled: Bool

    /// A record with the given fields.
    public init(id: String, repoTags: [String], repoDigests: [String] = [], size: UInt64,
                config: ImageConfig = ImageConfig(), rootfs: String, created: Date? = nil, layers: [String] = [],
                directory: String = "", pulled: Bool = false) {
        self.id = id
        self.repoTags = repoTags
        self.repoDigests = repoDigests
        self.size = size
        self.config = config
        self.rootfs = rootfs
        self.created = created
        self.layers = layers
        self.directory = directory
        self.pulled = pulled
    }

    private enum CodingKeys: String, CodingKey { case id, repoTags, repoDigests, size, config, rootfs, created, layers, pulled }

    /// Records written before layers existed decode with none.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        repoTags = try container.decodeIfPresent([String].self, forKey: .repoTags) ?? []
        repoDigests = try container.decodeIfPresent([String].self, forKey: .repoDigests) ?? []
        size = try container.decodeIfPresent(UInt64.self, forKey: .size) ?? 0
        config = try container.decodeIfPresent(ImageConfig.self, forKey: .config) ?? ImageConfig()
        rootfs = try container.decodeIfPresent(String.self, forKey: .rootfs) ?? ""
        created = try container.decodeIfPresent(Date.self, forKey: .created)
        layers = try container.decodeIfPresent([String].self, forKey: .layers) ?? []
        pulled = try container.decodeIfPresent(Bool.self, forKey: .pulled) ?? false
        directory = ""
    }

    /// The layer directories overlayfs stacks, top first (one directory for a directory image).
    public var lowerDirectories: [String] { rootfs.split(separator: ":").map(String.init) }

    /// Whether one of the image's tags is `tag` (in ``ImageReference/normalizedTag(_:)`` form):
    /// `busybox:latest` stored is found as `busybox:latest`, whatever registry prefix it was given.
    func isTagged(_ tag: String) -> Bool {
        repoTags.contains { ImageReference.normalizedTag($0) == tag }
    }

    /// The encoder for `image.json`: stable key order, ISO 8601 dates.
    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder matching ``makeEncoder()``.
    static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
