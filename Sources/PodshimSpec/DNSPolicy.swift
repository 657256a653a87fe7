#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `spec.dnsPolicy`: where a pod's resolv.conf comes from.
///
/// podshim has no cluster DNS (no `--cluster-dns` of a kubelet), so, exactly as a kubelet without
/// one does, `ClusterFirst` and `ClusterFirstWithHostNet` fall back to `Default`: see ``effective``.
public enum DNSPolicy: String, Equatable, Sendable, CaseIterable {
    /// The cluster's DNS first (Kubernetes' default when the manifest says nothing).
    case clusterFirst = "ClusterFirst"
    /// The cluster's DNS even for a host-network pod.
    case clusterFirstWithHostNet = "ClusterFirstWithHostNet"
    /// The host's resolv.conf, with `spec.dnsConfig` appended and merged.
    case `default` = "Default"
    /// Only `spec.dnsConfig`, which must then name at least one nameserver.
    case none = "None"

    /// The policy the pod gets on a node without cluster DNS: `Default` for both cluster policies.
    public var effective: DNSPolicy {
        switch self {
        case .clusterFirst, .clusterFirstWithHostNet: return .default
        case .default, .none: return self
        }
    }

    /// Whether the pod asked for cluster DNS and gets the host's resolv.conf instead.
    public var fallsBackToDefault: Bool { effective != self }
}

/// `spec.dnsConfig`: nameservers, search domains and options for the pod's resolv.conf, added to
/// the host's (dnsPolicy `Default`) or on their own (dnsPolicy `None`).
///
/// Not the same as ``DNSConfig``, the CRI's DnsConfig, which replaces the host's file whole.
public struct PodDNSConfig: Equatable, Sendable {
    /// IPv4 or IPv6 addresses, at most ``maximumNameservers``.
    public var nameservers: [String]
    /// Search domains (DNS-1123 subdomains, a trailing dot allowed), at most ``maximumSearches``.
    public var searches: [String]
    /// resolver options, in order; a later one with the same name wins.
    public var options: [PodDNSOption]

    /// The most nameservers resolv.conf holds (glibc's MAXNS; Kubernetes' MaxDNSNameservers).
    public static let maximumNameservers = 3
    /// The most search domains (Kubernetes' MaxDNSSearchPaths).
    public static let maximumSearches = 32
    /// The longest search list, spaces included (Kubernetes' MaxDNSSearchListChars).
    public static let maximumSearchListCharacters = 2048

    public init(nameservers: [String] = [], searches: [String] = [], options: [PodDNSOption] = []) {
        self.nameservers = nameservers
        self.searches = searches
        self.options = options
    }

    /// Whether it adds nothing.
    public var isEmpty: Bool { nameservers.isEmpty && searches.isEmpty && options.isEmpty }
}

/// One entry of `spec.dnsConfig.options`: `ndots` with value `5` is written `ndots:5`.
public struct PodDNSOption: Equatable, Sendable {
    public var name: String
    public var value: String?

    public init(name: String, value: String? = nil) {
        self.name = name
        self.value = value
    }

    /// As written in resolv.conf's `options` line: `name` or `name:value`.
    public var text: String {
        guard let value, !value.isEmpty else { return name }
        return "\(name):\(value)"
    }

    /// An option as resolv.conf writes it: `name:value` or `name`.
    init(text: Substring) {
        if let colon = text.firstIndex(of: ":") {
            self.init(name: String(text[..<colon]), value: String(text[text.index(after: colon)...]))
        } else {
            self.init(name: String(text))
        }
    }
}

extension PodSpec {
    /// The text of the pod's resolv.conf, given the host's (the file a kubelet's `--resolv-conf`
    /// names; `""` when the host has none). Pure.
    ///
    /// - A CRI pod's ``dnsConfig`` wins: its file replaces the host's (the kubelet already applied
    ///   the policy).
    /// - `Default` (and the cluster policies, which fall back to it): the host's file unchanged when
    ///   `spec.dnsConfig` adds nothing; otherwise, as the kubelet does, the host's nameservers and
    ///   search domains followed by the pod's (duplicates dropped, cut to 3 and 32), and the
    ///   host's options merged with the pod's by name, the pod's winning.
    /// - `None`: only `spec.dnsConfig`.
    public func resolvConf(hostResolvConf host: String) -> String {
        if let dnsConfig { return dnsConfig.resolvConf }
        let pod = podDNSConfig ?? PodDNSConfig()
        let merged: PodDNSConfig
        switch dnsPolicy.effective {
        case .none:
            merged = PodDNSConfig(nameservers: pod.nameservers, searches: pod.searches,
                                  options: Self.merge(pod.options, into: []))
        case .default, .clusterFirst, .clusterFirstWithHostNet:
            guard !pod.isEmpty else { return host }
            let hostConfig = Self.parseResolvConf(host)
            merged = PodDNSConfig(
                nameservers: Array(Self.unique(hostConfig.nameservers + pod.nameservers)
                    .prefix(PodDNSConfig.maximumNameservers)),
                searches: Array(Self.unique(hostConfig.searches + pod.searches).prefix(PodDNSConfig.maximumSearches)),
                options: Self.merge(pod.options, into: hostConfig.options))
        }
        return DNSConfig(servers: merged.nameservers, searches: merged.searches,
                         options: merged.options.map(\.text)).resolvConf
    }

    /// For the command line to say once: the pod asked for cluster DNS, which podshim does not
    /// have, and gets the host's resolv.conf. Nil otherwise (and for CRI pods, whose ``dnsConfig``
    /// the kubelet decided).
    public var dnsPolicyNotice: String? {
        guard dnsConfig == nil, dnsPolicy.fallsBackToDefault else { return nil }
        return "dnsPolicy \(dnsPolicy.rawValue): podshim has no cluster DNS, so the pod uses the host's resolv.conf"
            + " (dnsPolicy Default), as a kubelet without cluster DNS does"
    }

    /// The nameservers, search domains and options of a resolv.conf, read as the kubelet reads the
    /// host's: lines starting with `#` or `;` are comments, the last `search` line wins (`.` and a
    /// trailing dot dropped), `options` lines add up (a later option with the same name wins),
    /// other lines (`domain`, `sortlist`) are ignored.
    static func parseResolvConf(_ text: String) -> PodDNSConfig {
        var config = PodDNSConfig()
        for line in text.split(whereSeparator: \.isNewline) {
            if line.first == "#" || line.first == ";" { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = fields.first else { continue }
            let values = fields.dropFirst()
            switch keyword {
            case "nameserver":
                if let server = values.first { config.nameservers.append(String(server)) }
            case "search":
                config.searches = values.filter { $0 != "." }.map { String($0.hasSuffix(".") ? $0.dropLast() : $0) }
            case "options":
                config.options = merge(values.map(PodDNSOption.init(text:)), into: config.options)
            default:
                continue
            }
        }
        return config
    }

    /// `options` with each of `newer` replacing the one of the same name in place, or appended.
    private static func merge(_ newer: [PodDNSOption], into options: [PodDNSOption]) -> [PodDNSOption] {
        var result = options
        for option in newer {
            if let index = result.firstIndex(where: { $0.name == option.name }) {
                result[index] = option
            } else {
                result.append(option)
            }
        }
        return result
    }

    /// `values` without repeats, first occurrence kept.
    private static func unique(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }
}

/// IP address literals, for `spec.dnsConfig.nameservers`.
enum IPAddressRules {
    /// Whether `text` is an IPv4 address in dotted-quad form or an IPv6 address (no zone), as
    /// `inet_pton` reads them.
    static func isIPAddress(_ text: String) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return buffer.withUnsafeMutableBytes { bytes in
            inet_pton(AF_INET, text, bytes.baseAddress) == 1 || inet_pton(AF_INET6, text, bytes.baseAddress) == 1
        }
    }
}
