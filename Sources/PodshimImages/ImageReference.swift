/// How image references compare: `busybox`, `busybox:latest`, `docker.io/busybox` and
/// `docker.io/library/busybox:latest` all name one image. Pure string work.
public enum ImageReference {
    /// `reference` without a leading `docker.io/library/` or `docker.io/`.
    public static func withoutDefaultRegistry(_ reference: String) -> String {
        for prefix in ["docker.io/library/", "docker.io/"] where reference.hasPrefix(prefix) {
            return String(reference.dropFirst(prefix.count))
        }
        return reference
    }

    /// The canonical form of a tag reference: default registry dropped, `:latest` added when there
    /// is no tag. Digest references (`name@sha256:…`) get their name part normalised only.
    public static func normalizedTag(_ reference: String) -> String {
        let stripped = withoutDefaultRegistry(reference)
        if stripped.contains("@") { return stripped }
        return split(stripped).tag == nil ? stripped + ":latest" : stripped
    }

    /// `repository` and `tag` of `reference` (`busybox:1.36` → `busybox`, `1.36`). A colon before the
    /// last `/` belongs to a registry's port, not a tag.
    public static func split(_ reference: String) -> (repository: String, tag: String?) {
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
    public static func isSHA256Digest(_ digest: String) -> Bool {
        guard digest.hasPrefix("sha256:") else { return false }
        let hex = digest.utf8.dropFirst("sha256:".count)
        return hex.count == 64 && hex.allSatisfy(isLowercaseHex)
    }

    private static func isLowercaseHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }

    /// Whether `reference` is `[registry[:port]/]path[:tag]` as the distribution grammar has it:
    /// path components of lowercase letters, digits and `.`, `_`, `-` separators (not leading or
    /// trailing); a registry (first component with a `.` or `:`, or `localhost`) may have upper
    /// case and a port; a tag of `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. No digests, no paths.
    public static func isValidTagReference(_ reference: String) -> Bool {
        guard !reference.isEmpty, reference.count <= 255, !reference.contains("@"), !reference.hasPrefix("/") else { return false }
        let (repository, tag) = split(reference)
        if let tag {
            guard let first = tag.utf8.first, tag.utf8.count <= 128,
                  isWord(first), tag.utf8.allSatisfy({ isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        var components = repository.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !components.isEmpty else { return false }
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" {
            guard isRegistry(first) else { return false }
            components.removeFirst()
        }
        return components.allSatisfy(isPathComponent)
    }

    private static func isWord(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
    }

    private static func isPathComponent(_ component: String) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        let alnum: (UInt8) -> Bool = { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }
        let separator: (UInt8) -> Bool = { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || separator($0) }
    }

    private static func isRegistry(_ host: String) -> Bool {
        let parts = host.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 { guard !parts[1].isEmpty, parts[1].allSatisfy(\.isNumber) else { return false } }
        // Dot-separated labels of letters, digits and inner hyphens.
        return parts[0].split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last else { return false }
            let alnum: (UInt8) -> Bool = { isWord($0) && $0 != UInt8(ascii: "_") }
            return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
        }
    }
}
