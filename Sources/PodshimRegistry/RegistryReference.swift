import PodshimImages

/// A parsed image reference, normalised as distribution/reference does: `nginx` is
/// `docker.io/library/nginx:latest`; `registry.example:5000/team/app@sha256:…` pins a digest.
public struct RegistryReference: Equatable, Sendable, CustomStringConvertible {
    /// The registry as named (`docker.io`, `127.0.0.1:5000`, `localhost`).
    public var registry: String
    /// The repository path (`library/nginx`, `team/app`).
    public var repository: String
    /// The tag, when there is one and no digest decides (a digest wins over a tag).
    public var tag: String?
    /// `sha256:<hex>` when the reference pins one.
    public var digest: String?

    public static let defaultRegistry = "docker.io"

    /// `registry/repository:tag` or `registry/repository@digest`.
    public var description: String {
        if let digest { return "\(registry)/\(repository)@\(digest)" }
        return "\(registry)/\(repository):\(tag ?? "latest")"
    }

    /// `registry/repository`.
    public var name: String { registry + "/" + repository }

    /// The tag or digest to ask the registry for.
    public var manifestReference: String { digest ?? tag ?? "latest" }

    /// Parses `reference`. The first component is a registry when it has a `.` or `:`, is
    /// `localhost`, or has upper case; otherwise the registry is docker.io and a one-component
    /// name gets `library/`. `index.docker.io` is docker.io. No tag and no digest means `:latest`.
    public init(parsing reference: String) throws(RegistryError) {
        guard !reference.isEmpty, reference.utf8.count <= 4096 else { throw .invalidReference(reference, "it is empty or too long") }
        var rest = Substring(reference)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let pinned = String(rest[rest.index(after: at)...])
            guard ImageReference.isSHA256Digest(pinned) else {
                throw .invalidReference(reference, "the digest is not sha256: and 64 lowercase hex digits")
            }
            digest = pinned
            rest = rest[..<at]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let firstComponent = components.first, !firstComponent.isEmpty else {
            throw .invalidReference(reference, "it has no repository")
        }
        var registry = Self.defaultRegistry
        if components.count > 1, firstComponent.contains(".") || firstComponent.contains(":") || firstComponent == "localhost"
            || firstComponent.contains(where: \.isUppercase) {
            registry = firstComponent == "index.docker.io" ? Self.defaultRegistry : firstComponent
            components.removeFirst()
        }
        var path = components.joined(separator: "/")
        var tag: String?
        let (repository, splitTag) = ImageReference.split(path)
        if let splitTag {
            tag = splitTag
            path = repository
        }
        if registry == Self.defaultRegistry && !path.contains("/") { path = "library/" + path }
        let check = registry + "/" + path + (tag.map { ":" + $0 } ?? "")
        guard ImageReference.isValidTagReference(check), (registry + "/" + path).utf8.count <= 255 else {
            throw .invalidReference(reference, "it is not [registry/]repository[:tag][@sha256:digest] with lowercase "
                                    + "path components of [a-z0-9._-] and a tag of [A-Za-z0-9._-] up to 128 characters")
        }
        self.registry = registry
        self.repository = path
        self.tag = digest == nil ? (tag ?? "latest") : tag
        self.digest = digest
    }

    /// The host the distribution API is served from: `registry-1.docker.io` for docker.io.
    public var apiHost: String { registry == Self.defaultRegistry ? "registry-1.docker.io" : registry }
}
