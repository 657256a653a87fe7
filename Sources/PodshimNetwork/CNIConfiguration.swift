import Foundation
import Glibc
import PodshimSystem

/// A CNI network configuration list (a `.conflist`, or a single-plugin `.conf` wrapped into one,
/// as libcni does), kept as written: plugin objects are handed to the plugins with their unknown
/// keys untouched.
public struct CNINetworkList: Sendable, Equatable {
    /// The network's name (unique on the host; plugins use it in file paths).
    public var name: String
    public var cniVersion: String
    /// The plugin objects, in order; each has a `type`.
    public var plugins: [JSONValue]
    /// CHECK is never to be run for this network.
    public var disableCheck: Bool
    /// The file it was read from.
    public var file: String
    /// The list as a document (what a cached attachment keeps to replay DEL).
    public var document: JSONValue

    public var types: [String] { plugins.compactMap { $0["type"]?.stringValue } }

    /// Reads a list from `text` (the contents of `file`). Errors name the file and the field.
    public static func parse(_ bytes: [UInt8], file: String) throws(PodshimError) -> CNINetworkList {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw invalid(file, "not JSON: \(error)")
        }
        guard value.objectMembers != nil else { throw invalid(file, "not a JSON object") }
        var document = value
        if file.hasSuffix(".conflist") || value["plugins"] != nil {
            guard let plugins = value["plugins"]?.arrayValue else { throw invalid(file, "plugins: not an array") }
            guard !plugins.isEmpty else { throw invalid(file, "plugins: empty") }
        } else {
            // A single plugin (`.conf`, or `.json` without `plugins`): the list around it.
            guard value["type"] != nil else { throw invalid(file, "neither `plugins` (a list) nor `type` (a plugin)") }
            document = .object([
                ("cniVersion", value["cniVersion"] ?? .string("")),
                ("name", value["name"] ?? .string("")),
                ("plugins", .array([value])),
            ])
        }
        guard let name = document["name"]?.stringValue, !name.isEmpty else { throw invalid(file, "name: missing or empty") }
        guard name.utf8.count <= 256, !name.contains("/"), name != ".", name != ".." else {
            throw invalid(file, "name: \"\(name)\" cannot be used in a file name")
        }
        let version = document["cniVersion"]?.stringValue ?? ""
        guard !version.isEmpty else { throw invalid(file, "cniVersion: missing") }
        let plugins = document["plugins"]?.arrayValue ?? []
        for (index, plugin) in plugins.enumerated() {
            guard plugin.objectMembers != nil else { throw invalid(file, "plugins[\(index)]: not an object") }
            guard let type = plugin["type"]?.stringValue, !type.isEmpty else { throw invalid(file, "plugins[\(index)].type: missing") }
            guard !type.contains("/"), type != ".", type != ".." else {
                throw invalid(file, "plugins[\(index)].type: \"\(type)\" is not a plugin name")
            }
        }
        return CNINetworkList(name: name, cniVersion: version, plugins: plugins,
                              disableCheck: document["disableCheck"]?.boolValue ?? false, file: file, document: document)
    }

    /// The list recorded in a cached attachment.
    public static func fromDocument(_ document: JSONValue, file: String) throws(PodshimError) -> CNINetworkList {
        try parse(Array(document.text.utf8), file: file)
    }

    private static func invalid(_ file: String, _ message: String) -> PodshimError {
        PodshimError(.invalidArgument, operation: "read CNI configuration", subject: file, message: message)
    }
}

/// Where networks and plugins are found, and which configuration is the default network.
public struct CNIConfigurationDirectory: Sendable, Equatable {
    /// `/etc/cni/net.d` unless configured.
    public var directory: String
    /// Where plugin executables are searched, in order.
    public var binDirectories: [String]

    public static let defaultDirectory = "/etc/cni/net.d"
    /// The usual place, and where Debian's containernetworking-plugins installs them.
    public static let defaultBinDirectories = ["/opt/cni/bin", "/usr/lib/cni"]

    public init(directory: String = Self.defaultDirectory, binDirectories: [String] = Self.defaultBinDirectories) {
        self.directory = directory
        self.binDirectories = binDirectories
    }

    /// The candidate files (`.conf`, `.conflist`, `.json`) in lexical order; the first is the
    /// default network, as containerd and CRI-O choose it.
    public func candidates() -> [String] {
        // No directory: no network configured (reported as not ready by the caller).
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".conf") || $0.hasSuffix(".conflist") || $0.hasSuffix(".json") }
            .sorted().map { directory + "/" + $0 }
    }

    /// What changes when the configuration may have: names, sizes and modification times.
    public func signature() -> String {
        candidates().map { path -> String in
            var info = stat()
            guard stat(path, &info) == 0 else { return path }
            return "\(path):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }.joined(separator: "|")
    }

    /// containerd's template placeholders, replaced by the node's pod CIDR from the kubelet
    /// (UpdateRuntimeConfig): `"subnet": "{{.PodCIDR}}"` in a host-local range.
    public static let podCIDRPlaceholder = "{{.PodCIDR}}"

    /// The default network, or why there is none usable. `podCIDR` (the first of the kubelet's
    /// comma-separated list) replaces ``podCIDRPlaceholder`` in the file.
    public func load(podCIDR: String = "") -> Result<CNINetworkList, PodshimError> {
        guard let file = candidates().first else {
            return .failure(PodshimError(.failedPrecondition, operation: "load CNI configuration", subject: directory,
                                         message: "no network configuration (.conflist, .conf, .json) found"))
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            return .failure(PodshimError(.failedPrecondition, operation: "read CNI configuration", subject: file, errno: .last))
        }
        var bytes = Array(data)
        let text = String(decoding: bytes, as: UTF8.self)
        if text.contains(Self.podCIDRPlaceholder) {
            let cidr = podCIDR.split(separator: ",").first.map(String.init) ?? ""
            guard !cidr.isEmpty else {
                return .failure(PodshimError(.failedPrecondition, operation: "load CNI configuration", subject: file,
                                             message: "it uses \(Self.podCIDRPlaceholder) and no pod CIDR is set yet (UpdateRuntimeConfig)"))
            }
            bytes = Array(text.replacingOccurrences(of: Self.podCIDRPlaceholder, with: cidr).utf8)
        }
        let list: CNINetworkList
        do {
            list = try CNINetworkList.parse(bytes, file: file)
        } catch {
            return .failure(error)
        }
        for type in list.types where plugin(type) == nil {
            return .failure(PodshimError(.failedPrecondition, operation: "load CNI configuration", subject: file,
                                         message: "plugin \"\(type)\" not found in \(binDirectories.joined(separator: ":"))"))
        }
        return .success(list)
    }

    /// The executable of plugin `type`.
    public func plugin(_ type: String) -> String? {
        for directory in binDirectories {
            let path = directory + "/" + type
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}
