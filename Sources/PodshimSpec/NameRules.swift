/// The syntax of names in a Pod manifest, as Kubernetes defines them.
enum NameRules {
    /// Longest DNS-1123 label (and so the longest hostname).
    static let maxLabelLength = 63
    /// Longest DNS-1123 subdomain.
    static let maxSubdomainLength = 253

    static let labelRule =
        "must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
    static let subdomainRule =
        "must be a DNS-1123 subdomain (at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit)"
    static let serviceNameRule =
        "must be an IANA service name (at most 15 lowercase letters, digits and '-', with at least one letter, no leading, trailing or doubled '-')"
    static let uidRule = "must be 1 to 64 letters, digits, '-' and '_'"

    /// A DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending with a letter or digit.
    static func isDNS1123Label(_ name: String) -> Bool {
        name.utf8.count <= maxLabelLength && isLabelShaped(Substring(name))
    }

    /// A DNS-1123 subdomain: at most 253 characters, dot-separated parts that are label-shaped
    /// (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`).
    static func isDNS1123Subdomain(_ name: String) -> Bool {
        name.utf8.count <= maxSubdomainLength
            && name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isLabelShaped)
    }

    /// An IANA service name (a port name): 1–15 of `[a-z0-9-]` with at least one letter,
    /// not starting or ending with `-` and without `--`.
    static func isIANAServiceName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        return (1...15).contains(scalars.count)
            && scalars.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" }
            && scalars.contains { ("a"..."z").contains($0) }
            && scalars.first != "-" && scalars.last != "-"
            && !name.contains("--")
    }

    /// A pod UID: 1–64 of `[A-Za-z0-9_-]`. It becomes a directory name, so nothing else is allowed.
    static func isValidUID(_ uid: String) -> Bool {
        let scalars = uid.unicodeScalars
        return (1...64).contains(scalars.count) && scalars.allSatisfy {
            isLowerAlphanumeric($0) || ("A"..."Z").contains($0) || $0 == "-" || $0 == "_"
        }
    }

    /// The hostname a pod gets when `spec.hostname` is absent: its name, cut to 63 characters
    /// and without the `-` or `.` the cut may leave at the end (as the kubelet does).
    static func defaultHostname(forPodName name: String) -> String {
        guard name.utf8.count > maxLabelLength else { return name }
        // A valid pod name is ASCII, so characters and bytes agree.
        var hostname = String(name.prefix(maxLabelLength))
        while let last = hostname.last, last == "-" || last == "." { hostname.removeLast() }
        return hostname
    }

    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, with no length limit.
    private static func isLabelShaped(_ part: Substring) -> Bool {
        let scalars = part.unicodeScalars
        guard let first = scalars.first, let last = scalars.last else { return false }
        return isLowerAlphanumeric(first) && isLowerAlphanumeric(last)
            && scalars.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" }
    }

    private static func isLowerAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
