import Foundation

/// What a node admin says about registries (containerd's hosts.toml ideas), read from a JSON file
/// (`podshim serve --registry-config FILE`, `podshim images pull --registry-config FILE`):
///
/// ```json
/// {
///   "hosts": {
///     "docker.io": { "mirrors": ["https://mirror.internal:5000"] },
///     "mirror.internal:5000": { "ca": ["/etc/podshim/certs/mirror-ca.pem"],
///                               "username": "puller", "password": "…" },
///     "registry.lab:5000": { "insecure": true },
///     "secure.example": { "clientCertificate": "/etc/podshim/certs/client.pem",
///                         "clientKey": "/etc/podshim/certs/client-key.pem" }
///   },
///   "pullProgressTimeoutSeconds": 300,
///   "maxConcurrentDownloads": 3
/// }
/// ```
///
/// - `mirrors`: endpoints tried in order before the registry itself, for tags and digests alike
///   (`?ns=<registry>` is added, as containerd does); a mirror that fails or lacks the image is
///   skipped. Credentials from the CRI are never sent to a mirror, only its own `username`/`password`.
/// - `ca`: PEM files trusted for that host besides the system bundle; `clientCertificate`/`clientKey`:
///   mutual TLS; `skipVerify`: TLS without verification; `insecure`: plain HTTP allowed (and TLS
///   unverified), only for hosts named so.
/// - `pullProgressTimeoutSeconds`: a pull whose byte count stops growing for this long is cancelled
///   (0: never; default 300, as the CRI plugin's image_pull_progress_timeout).
public struct RegistryConfiguration: Codable, Equatable, Sendable {
    public struct Host: Codable, Equatable, Sendable {
        public var mirrors: [String]?
        public var ca: [String]?
        public var clientCertificate: String?
        public var clientKey: String?
        public var skipVerify: Bool?
        public var insecure: Bool?
        public var username: String?
        public var password: String?

        public init(mirrors: [String]? = nil, ca: [String]? = nil, clientCertificate: String? = nil, clientKey: String? = nil,
                    skipVerify: Bool? = nil, insecure: Bool? = nil, username: String? = nil, password: String? = nil) {
            self.mirrors = mirrors
            self.ca = ca
            self.clientCertificate = clientCertificate
            self.clientKey = clientKey
            self.skipVerify = skipVerify
            self.insecure = insecure
            self.username = username
            self.password = password
        }
    }

    public var hosts: [String: Host]
    public var pullProgressTimeoutSeconds: Int?
    public var maxConcurrentDownloads: Int?

    public init(hosts: [String: Host] = [:], pullProgressTimeoutSeconds: Int? = nil, maxConcurrentDownloads: Int? = nil) {
        self.hosts = hosts
        self.pullProgressTimeoutSeconds = pullProgressTimeoutSeconds
        self.maxConcurrentDownloads = maxConcurrentDownloads
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hosts = try container.decodeIfPresent([String: Host].self, forKey: .hosts) ?? [:]
        pullProgressTimeoutSeconds = try container.decodeIfPresent(Int.self, forKey: .pullProgressTimeoutSeconds)
        maxConcurrentDownloads = try container.decodeIfPresent(Int.self, forKey: .maxConcurrentDownloads)
    }

    /// Reads and checks `path`: every mirror an http(s) URL with a host, every file named there
    /// present, numbers in range. An error names the file and the field.
    public static func load(_ path: String) throws(RegistryError) -> RegistryConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("\(path): cannot be read")
        }
        let configuration: RegistryConfiguration
        do {
            configuration = try JSONDecoder().decode(RegistryConfiguration.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .configuration("\(path): \(field.isEmpty ? "" : field + ": ")\(context.debugDescription)")
        } catch {
            throw .configuration("\(path): \(error)")
        }
        try configuration.validate(path: path)
        return configuration
    }

    func validate(path: String) throws(RegistryError) {
        for (host, settings) in hosts.sorted(by: { $0.key < $1.key }) {
            guard !host.isEmpty, !host.contains("/") else { throw .configuration("\(path): hosts: \"\(host)\" is not host[:port]") }
            for (index, mirror) in (settings.mirrors ?? []).enumerated() {
                guard let url = URL(string: mirror), let scheme = url.scheme, ["http", "https"].contains(scheme),
                      url.host != nil else {
                    throw .configuration("\(path): hosts.\(host).mirrors[\(index)]: \"\(mirror)\" is not an http(s) URL")
                }
            }
            let files = (settings.ca ?? []).enumerated().map { ("ca[\($0.offset)]", $0.element) }
                + [("clientCertificate", settings.clientCertificate), ("clientKey", settings.clientKey)].compactMap { name, file in
                    file.map { (name, $0) }
                }
            for (field, file) in files where !FileManager.default.isReadableFile(atPath: file) {
                throw .configuration("\(path): hosts.\(host).\(field): \(file) cannot be read")
            }
            if (settings.clientCertificate == nil) != (settings.clientKey == nil) {
                throw .configuration("\(path): hosts.\(host): clientCertificate and clientKey go together")
            }
        }
        if let timeout = pullProgressTimeoutSeconds, timeout < 0 {
            throw .configuration("\(path): pullProgressTimeoutSeconds: must not be negative")
        }
        if let downloads = maxConcurrentDownloads, !(1...64).contains(downloads) {
            throw .configuration("\(path): maxConcurrentDownloads: must be 1 to 64")
        }
    }

    /// The settings for `host` (`host:port`), or none.
    func settings(for host: String) -> Host { hosts[host] ?? Host() }
}
