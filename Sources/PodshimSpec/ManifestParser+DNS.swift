// MARK: - spec.dnsPolicy and spec.dnsConfig

extension ManifestParser {
    private static let dnsConfigFields: Set<String> = ["nameservers", "searches", "options"]
    private static let dnsOptionFields: Set<String> = ["name", "value"]

    /// `spec.dnsPolicy` (ClusterFirst when absent) and `spec.dnsConfig` (nil when absent or empty),
    /// checked as the API server checks them: at most 3 nameservers, each an IP address; at most 32
    /// search domains, each a DNS-1123 subdomain (a trailing dot allowed), 2048 characters in all;
    /// options with a name; and dnsPolicy None needs a nameserver.
    static func parseDNS(in spec: ManifestMapping) throws(ManifestError) -> (DNSPolicy, PodDNSConfig?) {
        let policy = try spec.oneOf("dnsPolicy", DNSPolicy.allCases.map(\.rawValue))
            .flatMap(DNSPolicy.init(rawValue:)) ?? .clusterFirst
        var config: PodDNSConfig?
        if let dns = try spec.mapping("dnsConfig", accepting: dnsConfigFields) {
            config = try parseDNSConfig(dns)
        }
        if policy == .none, config?.nameservers.isEmpty ?? true {
            throw ManifestError(path: "spec.dnsConfig.nameservers",
                                message: "required when dnsPolicy is None (at least one nameserver)")
        }
        return (policy, config.flatMap { $0.isEmpty ? nil : $0 })
    }

    private static func parseDNSConfig(_ dns: ManifestMapping) throws(ManifestError) -> PodDNSConfig {
        let nameservers = try dns.stringList("nameservers")
        guard nameservers.count <= PodDNSConfig.maximumNameservers else {
            throw ManifestError(path: dns.path(of: "nameservers"),
                                message: "must not have more than \(PodDNSConfig.maximumNameservers) nameservers")
        }
        for (index, server) in nameservers.enumerated() where !IPAddressRules.isIPAddress(server) {
            throw ManifestError(path: "\(dns.path(of: "nameservers"))[\(index)]",
                                message: "must be an IPv4 or IPv6 address")
        }

        let searches = try dns.stringList("searches")
        guard searches.count <= PodDNSConfig.maximumSearches else {
            throw ManifestError(path: dns.path(of: "searches"),
                                message: "must not have more than \(PodDNSConfig.maximumSearches) search domains")
        }
        guard searches.joined(separator: " ").utf8.count <= PodDNSConfig.maximumSearchListCharacters else {
            throw ManifestError(path: dns.path(of: "searches"),
                                message: "must not have more than \(PodDNSConfig.maximumSearchListCharacters) characters (spaces included)")
        }
        for (index, search) in searches.enumerated() {
            let domain = search.hasSuffix(".") ? String(search.dropLast()) : search
            guard NameRules.isDNS1123Subdomain(domain) else {
                throw ManifestError(path: "\(dns.path(of: "searches"))[\(index)]",
                                    message: NameRules.subdomainRule + ", with an optional trailing dot")
            }
        }

        var options: [PodDNSOption] = []
        for option in try dns.mappingList("options", accepting: dnsOptionFields) {
            let name = try option.requiredString("name")
            let value = try option.string("value")
            for (field, text) in [("name", name), ("value", value ?? "")]
                where text.contains(where: { $0.isWhitespace || $0 == "#" || $0 == ";" }) {
                throw ManifestError(path: option.path(of: field), message: "must be one word (no spaces, '#' or ';')")
            }
            if name.contains(":") {
                throw ManifestError(path: option.path(of: "name"), message: "must not contain ':' (the value goes in value)")
            }
            options.append(PodDNSOption(name: name, value: value))
        }
        return PodDNSConfig(nameservers: nameservers, searches: searches, options: options)
    }
}
