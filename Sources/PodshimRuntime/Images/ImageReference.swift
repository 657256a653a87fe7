/// How image references compare: `busybox`, `busybox:latest`, `docker.io/busybox` and
/// `docker.io/library/busybox:latest` all name one image. Pure string work.
enum ImageReference {
    /// `reference` without a leading `docker.io/library/` or `docker.io/`.
    static func withoutDefaultRegistry(_ reference: String) -> String {
        for prefix in ["docker.io/library/", "docker.io/"] where reference.hasPrefix(prefix) {
            return String(reference.dropFirst(prefix.count))
        }
        return reference
    }

    /// The canonical form of a tag reference: default registry dropped, `:latest` added when there
    /// is no tag. Digest references (`name@sha256:…`) get their name part normalised only.
    static func normalizedTag(_ reference: String) -> String {
        let stripped = withoutDefaultRegistry(reference)
        if stripped.contains("@") { return stripped }
        return split(stripped).tag == nil ? stripped + ":latest" : stripped
    }

    /// `repository` and `tag` of `reference` (`busybox:1.36` → `busybox`, `1.36`). A colon before the
    /// last `/` belongs to a registry's port, not a tag.
    static func split(_ reference: String) -> (repository: String, tag: String?) {
        let nameStart = reference.lastIndex(of: "/").map { reference.index(after: $0) } ?? reference.startIndex
        guard let colon = reference[nameStart...].lastIndex(of: ":") else { return (reference, nil) }
        return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
    }

    /// The 64 hex digits of an image id given as `sha256:<hex>` or `<hex>`, or a prefix of them
    /// (lowercase hex only); nil when `reference` is not hex.
    static func idHex(_ reference: String) -> String? {
        let hex = reference.hasPrefix("sha256:") ? String(reference.dropFirst("sha256:".count)) : reference
        guard !hex.isEmpty, hex.count <= 64, hex.utf8.allSatisfy(isLowercaseHex) else { return nil }
        return hex
    }

    /// Whether `digest` is `sha256:` followed by exactly 64 lowercase hex digits.
    static func isSHA256Digest(_ digest: String) -> Bool {
        guard digest.hasPrefix("sha256:") else { return false }
        let hex = digest.utf8.dropFirst("sha256:".count)
        return hex.count == 64 && hex.allSatisfy(isLowercaseHex)
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }
}
