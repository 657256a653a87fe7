import Foundation
import Glibc
import Synchronization
import PodshimSystem

/// A hostPort of a pod (the CNI `portMappings` capability, which the portmap plugin programs).
public struct PortMapping: Sendable, Equatable {
    public var hostPort: Int
    public var containerPort: Int
    /// `tcp`, `udp` or `sctp`.
    public var `protocol`: String
    /// Empty: every address of the node.
    public var hostIP: String

    public init(hostPort: Int, containerPort: Int, protocol: String, hostIP: String) {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }

    var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("hostPort", .integer(hostPort)), ("containerPort", .integer(containerPort)), ("protocol", .string(`protocol`)),
        ]
        if !hostIP.isEmpty { members.append(("hostIP", .string(hostIP))) }
        return .object(members)
    }

    init?(json: JSONValue) {
        guard let host = json["hostPort"]?.intValue, let container = json["containerPort"]?.intValue else { return nil }
        self.init(hostPort: host, containerPort: container, protocol: json["protocol"]?.stringValue ?? "tcp",
                  hostIP: json["hostIP"]?.stringValue ?? "")
    }

    /// Both would receive the same connections.
    func clashes(with other: PortMapping) -> Bool {
        let any: Set<String> = ["", "0.0.0.0", "::"]
        return hostPort == other.hostPort && `protocol` == other.protocol
            && (hostIP == other.hostIP || any.contains(hostIP) || any.contains(other.hostIP))
    }
}

/// What a pod asks of the network.
public struct PodNetworkRequest: Sendable {
    /// The sandbox id: CNI_CONTAINERID.
    public var podID: String
    public var namespace: String
    public var name: String
    public var uid: String
    public var portMappings: [PortMapping]
    /// The pod's cgroup (the `cgroupPath` capability).
    public var cgroupPath: String?

    public init(podID: String, namespace: String, name: String, uid: String, portMappings: [PortMapping] = [], cgroupPath: String? = nil) {
        self.podID = podID
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.portMappings = portMappings
        self.cgroupPath = cgroupPath
    }
}

/// A pod attached to the network.
public struct PodNetworkAttachment: Sendable, Equatable {
    /// Bare addresses of the pod's interface, the first IPv4 first (the pod IP), then the rest.
    public var ips: [String]
    /// The pinned network namespace (CNI_NETNS).
    public var netns: String
    /// The CNI network's name.
    public var network: String
}

/// Pod networking through CNI plugins, as containerd and CRI-O drive them: the default network of
/// the configuration directory (re-read when it changes), ADD with the pod's CNI_ARGS and
/// capabilities (port mappings, cgroup path), the attachment cached durably — config, args and
/// result — *before* and after ADD, so that DEL (in reverse order, with the cached result as
/// prevResult) can be replayed with exactly what ADD had, after a failed ADD, a failed DEL or a
/// crash of podshim. One operation at a time per pod.
public final class CNIManager: Sendable {
    public struct Options: Sendable {
        public var configuration: CNIConfigurationDirectory
        /// Cached attachments (persistent: host-local leases outlive a reboot, so must these).
        public var cacheDirectory: String
        /// Pinned network namespaces.
        public var pinDirectory: String
        public var timeoutSeconds: Double
        public var ifName: String

        public init(configuration: CNIConfigurationDirectory, cacheDirectory: String, pinDirectory: String,
                    timeoutSeconds: Double = 60, ifName: String = "eth0") {
            self.configuration = configuration
            self.cacheDirectory = cacheDirectory
            self.pinDirectory = pinDirectory
            self.timeoutSeconds = timeoutSeconds
            self.ifName = ifName
        }
    }

    public let options: Options
    private struct State {
        var podCIDR = ""
        var signature: String?
        var loaded: Result<CNINetworkList, PodshimError>?
        var busy: Set<String> = []
        /// Reserved hostPorts by pod id, with the pod's name for messages.
        var ports: [String: (pod: String, mappings: [PortMapping])] = [:]
    }
    private let state = Mutex(State())
    /// Cleanup problems nobody asked about (the caller's error is the ADD's); read by ``takeProblems()``.
    private let failureLog = Mutex<[String]>([])

    /// Cleanup problems since the last call (for the daemon's log).
    public func takeProblems() -> [String] {
        failureLog.withLock { problems in
            defer { problems.removeAll() }
            return problems
        }
    }

    public init(options: Options) {
        self.options = options
    }

    /// One manager per set of options in the process, so that every user (the CRI, the pod
    /// service's runners, recovery) shares its per-pod exclusion and hostPort reservations.
    public static func shared(_ options: Options) -> CNIManager {
        let key = [options.configuration.directory, options.configuration.binDirectories.joined(separator: ":"),
                   options.cacheDirectory, options.pinDirectory, "\(options.timeoutSeconds)", options.ifName].joined(separator: "\u{0}")
        return instances.withLock { instances in
            if let existing = instances[key] { return existing }
            let manager = CNIManager(options: options)
            instances[key] = manager
            return manager
        }
    }
    private static let instances = Mutex<[String: CNIManager]>([:])

    // MARK: - Configuration

    /// The node's pod CIDR (UpdateRuntimeConfig), for configurations that use it.
    public var podCIDR: String {
        get { state.withLock { $0.podCIDR } }
        set { state.withLock { $0.podCIDR = newValue } }
    }

    /// The default network, re-read when the directory's files or the pod CIDR changed since the last look.
    public func network() -> Result<CNINetworkList, PodshimError> {
        let cidr = podCIDR
        let signature = options.configuration.signature() + "|" + cidr
        if let cached = state.withLock({ $0.signature == signature ? $0.loaded : nil }) { return cached }
        let loaded = options.configuration.load(podCIDR: cidr)
        state.withLock { state in
            state.signature = signature
            state.loaded = loaded
        }
        return loaded
    }

    // MARK: - Attach and detach

    /// Attaches the pod whose pause process is `pausePID` (its network namespace is pinned first).
    /// On failure everything is undone — DEL of what ADD may have made, the pin, the cache — and
    /// the plugin's error thrown.
    public func attach(_ request: PodNetworkRequest, pausePID: pid_t) throws(PodshimError) -> PodNetworkAttachment {
        let list = try network().get()
        return try exclusive(request.podID) { () throws(PodshimError) -> PodNetworkAttachment in
            try reservePorts(request)
            return try attach(request, pausePID: pausePID, list: list)
        }
    }

    private func attach(_ request: PodNetworkRequest, pausePID: pid_t, list: CNINetworkList) throws(PodshimError) -> PodNetworkAttachment {
        let pin = pinPath(request.podID)
        do {
            try FileSystem.createDirectory(options.pinDirectory, mode: 0o711)
            try FileSystem.createDirectory(options.cacheDirectory, mode: 0o700)
            try NetnsPin.pin(pid: pausePID, at: pin)
        } catch {
            releasePorts(request.podID)
            throw PodshimError(.internal, operation: "pin network namespace", subject: pin, errno: error.errno,
                               message: error.description)
        }
        var entry = CachedAttachment(containerID: request.podID, ifName: options.ifName, network: list, netns: pin,
                                     args: Self.args(request), capabilities: Self.capabilities(request), result: nil)
        do {
            // Before ADD: a crash from here on still leads to a DEL.
            try save(entry)
            Failpoint.hit("cni/before-add")
            let result = try add(entry)
            entry.result = result
            try save(entry)
            Failpoint.hit("cni/added")
            return PodNetworkAttachment(ips: Self.ips(in: result, ifName: options.ifName), netns: pin, network: list.name)
        } catch let failure {
            // Every ADD is followed by a DEL, a failed one too. Whatever the DEL says, the attempt is
            // then forgotten (as CRI-O does): each plugin got its DEL (a failing one does not stop
            // the others), and keeping the pod's pin for a plugin that fails again would only
            // retry it forever.
            do {
                try delete(entry)
            } catch {
                failureLog.withLock { $0.append("after a failed ADD: \(error)") }
            }
            do {
                try NetnsPin.unpin(pin)
            } catch {
                failureLog.withLock { $0.append("after a failed ADD: \(error)") }
            }
            removeCache(request.podID)
            releasePorts(request.podID)
            throw PodshimError(failure.code, operation: "CNI ADD", subject: "network \(list.name) for pod \(request.namespace)/\(request.name)",
                               errno: failure.errno, message: failure.description)
        }
    }

    /// Detaches the pod (DEL with what ADD had), releases its pin and its cache. Idempotent: a
    /// pod never attached, or detached already, is fine. A failed DEL keeps the cache for a retry.
    public func detach(podID: String) throws(PodshimError) {
        try exclusive(podID) { () throws(PodshimError) in
            let pin = pinPath(podID)
            if let entry = loadCache(podID) {
                var replay = entry
                // A stale pin (file but no namespace) makes plugins fail: DEL without a netns then.
                replay.netns = NetnsPin.isPinned(entry.netns) ? entry.netns : ""
                try delete(replay)
                Failpoint.hit("cni/deleted")
            }
            try unpin(pin)
            removeCache(podID)
            releasePorts(podID)
        }
    }

    /// The attachment of a pod re-adopted after a restart (its hostPorts reserved again).
    public func restore(podID: String, pod name: String) -> PodNetworkAttachment? {
        guard let entry = loadCache(podID) else { return nil }
        let mappings = entry.capabilities.first { $0.key == "portMappings" }?.value.arrayValue?.compactMap(PortMapping.init(json:)) ?? []
        state.withLock { $0.ports[podID] = (name, mappings) }
        return PodNetworkAttachment(ips: entry.result.map { Self.ips(in: $0, ifName: entry.ifName) } ?? [],
                                    netns: entry.netns, network: entry.network.name)
    }

    /// Start-up: DEL for every cached attachment whose pod is not in `live` (a pod removed while
    /// podshim was down, or an interrupted RunPodSandbox), and pins without a pod. One line each.
    public func collectGarbage(live: Set<String>) -> [String] {
        var report: [String] = []
        // No cache directory yet: nothing was ever attached.
        let cached = ((try? FileManager.default.contentsOfDirectory(atPath: options.cacheDirectory)) ?? [])
        for name in cached.sorted() {
            if name.contains(".tmp.") {
                unlink(options.cacheDirectory + "/" + name) // an interrupted write
                continue
            }
            guard name.hasSuffix(".json") else { continue }
            let id = String(name.dropLast(5))
            guard !live.contains(id) else { continue }
            do {
                try detach(podID: id)
                report.append("network of gone pod \(id.prefix(13)) released (CNI DEL)")
            } catch {
                report.append("network of gone pod \(id.prefix(13)): DEL failed, kept for a retry: \(error)")
            }
        }
        // No pin directory yet: nothing was ever pinned.
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: options.pinDirectory)) ?? []).sorted()
            where !live.contains(name) && loadCache(name) == nil {
            do {
                try NetnsPin.unpin(options.pinDirectory + "/" + name)
                report.append("network namespace pin of gone pod \(name.prefix(13)) removed")
            } catch {
                report.append("network namespace pin of gone pod \(name.prefix(13)): \(error)")
            }
        }
        return report
    }

    public func pinPath(_ podID: String) -> String { options.pinDirectory + "/" + podID }

    private func unpin(_ pin: String) throws(PodshimError) {
        do {
            try NetnsPin.unpin(pin)
        } catch {
            throw PodshimError(.internal, operation: "unpin network namespace", subject: pin, errno: error.errno)
        }
    }

    // MARK: - Plugin calls

    private func add(_ entry: CachedAttachment) throws(PodshimError) -> JSONValue {
        var previous: JSONValue?
        for plugin in entry.network.plugins {
            let config = Self.pluginConfig(plugin, list: entry.network, previous: previous, capabilities: entry.capabilities)
            let invocation = CNIInvocation(command: .add, containerID: entry.containerID, netns: entry.netns,
                                           ifName: entry.ifName, args: entry.args, pluginPath: options.configuration.binDirectories)
            let result = try invocation.run(plugin: try executable(plugin), config: config, timeoutSeconds: options.timeoutSeconds)
            previous = result ?? previous
        }
        return previous ?? .object([])
    }

    private func delete(_ entry: CachedAttachment) throws(PodshimError) {
        var failures: [PodshimError] = []
        for plugin in entry.network.plugins.reversed() {
            let config = Self.pluginConfig(plugin, list: entry.network, previous: entry.result, capabilities: entry.capabilities)
            let invocation = CNIInvocation(command: .del, containerID: entry.containerID, netns: entry.netns,
                                           ifName: entry.ifName, args: entry.args, pluginPath: options.configuration.binDirectories)
            guard let path = options.configuration.plugin(plugin["type"]?.stringValue ?? "") else {
                // A plugin removed since ADD has nothing to undo that podshim could ask for: DEL
                // is to succeed when the state is gone.
                failureLog.withLock { $0.append("CNI DEL for pod \(entry.containerID.prefix(13)): plugin \(plugin["type"]?.stringValue ?? "?") is gone, skipped") }
                continue
            }
            do {
                _ = try invocation.run(plugin: path, config: config, timeoutSeconds: options.timeoutSeconds)
            } catch {
                failures.append(error) // the other plugins still get their DEL
            }
        }
        if let first = failures.first {
            throw PodshimError(first.code, operation: "CNI DEL", subject: "network \(entry.network.name) for pod \(entry.containerID.prefix(13))",
                               message: failures.map(\.description).joined(separator: "; "))
        }
    }

    private func executable(_ plugin: JSONValue) throws(PodshimError) -> String {
        let type = plugin["type"]?.stringValue ?? ""
        guard let path = options.configuration.plugin(type) else {
            throw PodshimError(.failedPrecondition, operation: "find CNI plugin", subject: type,
                               message: "not found in \(options.configuration.binDirectories.joined(separator: ":"))")
        }
        return path
    }

    /// One plugin's stdin, as libcni builds it: the plugin object with the list's name and
    /// version, the previous result, and `runtimeConfig` for each capability it declares and the
    /// runtime supplies (its `capabilities` key removed).
    static func pluginConfig(_ plugin: JSONValue, list: CNINetworkList, previous: JSONValue?,
                             capabilities: [(key: String, value: JSONValue)]) -> JSONValue {
        var config = plugin.setting("name", to: .string(list.name)).setting("cniVersion", to: .string(list.cniVersion))
        if let previous { config = config.setting("prevResult", to: previous) }
        let declared = plugin["capabilities"]?.objectMembers ?? []
        config = config.removing("capabilities")
        let runtime = capabilities.filter { capability in declared.contains { $0.key == capability.key && $0.value == .bool(true) } }
        if !runtime.isEmpty { config = config.setting("runtimeConfig", to: .object(runtime)) }
        return config
    }

    static func args(_ request: PodNetworkRequest) -> [(String, String)] {
        [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", request.namespace), ("K8S_POD_NAME", request.name),
         ("K8S_POD_INFRA_CONTAINER_ID", request.podID), ("K8S_POD_UID", request.uid)]
    }

    static func capabilities(_ request: PodNetworkRequest) -> [(key: String, value: JSONValue)] {
        var capabilities: [(key: String, value: JSONValue)] = []
        if !request.portMappings.isEmpty { capabilities.append(("portMappings", .array(request.portMappings.map(\.json)))) }
        if let cgroup = request.cgroupPath { capabilities.append(("cgroupPath", .string(cgroup))) }
        return capabilities
    }

    /// The pod's addresses in a result: those of `ifName` inside the pod (every one when the
    /// result does not say which interface), bare, the first IPv4 first.
    public static func ips(in result: JSONValue, ifName: String) -> [String] {
        let interfaces = result["interfaces"]?.arrayValue ?? []
        var found: [String] = []
        for ip in result["ips"]?.arrayValue ?? [] {
            if let index = ip["interface"]?.intValue, index >= 0, index < interfaces.count {
                let interface = interfaces[index]
                guard interface["name"]?.stringValue == ifName, !(interface["sandbox"]?.stringValue ?? "").isEmpty else { continue }
            }
            guard let address = ip["address"]?.stringValue else { continue }
            found.append(String(address.split(separator: "/").first ?? ""))
        }
        // Results of spec 0.2.0: ip4/ip6 objects.
        for key in ["ip4", "ip6"] {
            if let address = result[key]?["ip"]?.stringValue { found.append(String(address.split(separator: "/").first ?? "")) }
        }
        found = found.filter { !$0.isEmpty }
        let v4 = found.filter { !$0.contains(":") }
        return v4 + found.filter { $0.contains(":") }
    }

    // MARK: - hostPorts

    private func reservePorts(_ request: PodNetworkRequest) throws(PodshimError) {
        let podName = "\(request.namespace)/\(request.name)"
        let clash: (PortMapping, String)? = state.withLock { state in
            for mapping in request.portMappings {
                for (id, other) in state.ports where id != request.podID {
                    if other.mappings.contains(where: { mapping.clashes(with: $0) }) { return (mapping, other.pod) }
                }
            }
            state.ports[request.podID] = (podName, request.portMappings)
            return nil
        }
        if let (mapping, owner) = clash {
            throw PodshimError(.alreadyExists, operation: "reserve hostPort", subject: "pod \(podName)",
                               message: "hostPort \(mapping.hostPort)/\(mapping.protocol)"
                                + (mapping.hostIP.isEmpty ? "" : " on \(mapping.hostIP)") + " is already used by pod \(owner)")
        }
    }

    private func releasePorts(_ podID: String) {
        _ = state.withLock { $0.ports.removeValue(forKey: podID) }
    }

    // MARK: - One operation at a time per pod

    private func exclusive<T>(_ podID: String, _ body: () throws(PodshimError) -> T) throws(PodshimError) -> T {
        while !state.withLock({ $0.busy.insert(podID).inserted }) { usleep(2_000) }
        defer { _ = state.withLock { $0.busy.remove(podID) } }
        return try body()
    }

    // MARK: - The cache

    /// libcni's cache format (`kind: cniCacheV1`), one file per pod.
    struct CachedAttachment {
        var containerID: String
        var ifName: String
        var network: CNINetworkList
        var netns: String
        var args: [(String, String)]
        var capabilities: [(key: String, value: JSONValue)]
        var result: JSONValue?

        var json: JSONValue {
            .object([
                ("kind", .string("cniCacheV1")),
                ("containerId", .string(containerID)),
                ("ifName", .string(ifName)),
                ("networkName", .string(network.name)),
                ("netns", .string(netns)),
                ("cniArgs", .array(args.map { .array([.string($0.0), .string($0.1)]) })),
                ("capabilityArgs", .object(capabilities)),
                ("config", .string(Data(network.document.text.utf8).base64EncodedString())),
                ("configFile", .string(network.file)),
                ("result", result ?? .null),
            ])
        }

        init(containerID: String, ifName: String, network: CNINetworkList, netns: String, args: [(String, String)],
             capabilities: [(key: String, value: JSONValue)], result: JSONValue?) {
            self.containerID = containerID
            self.ifName = ifName
            self.network = network
            self.netns = netns
            self.args = args
            self.capabilities = capabilities
            self.result = result
        }

        init?(json: JSONValue) {
            guard json["kind"]?.stringValue == "cniCacheV1", let id = json["containerId"]?.stringValue,
                  let config = json["config"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
                  let list = try? CNINetworkList.parse(Array(config), file: json["configFile"]?.stringValue ?? "(cached)") // damaged: as missing
            else { return nil }
            containerID = id
            ifName = json["ifName"]?.stringValue ?? "eth0"
            network = list
            netns = json["netns"]?.stringValue ?? ""
            args = (json["cniArgs"]?.arrayValue ?? []).compactMap { pair in
                guard let items = pair.arrayValue, items.count == 2, let key = items[0].stringValue, let value = items[1].stringValue else { return nil }
                return (key, value)
            }
            capabilities = json["capabilityArgs"]?.objectMembers ?? []
            result = json["result"].flatMap { $0 == .null ? nil : $0 }
        }
    }

    private func cachePath(_ podID: String) -> String { options.cacheDirectory + "/" + podID + ".json" }

    private func save(_ entry: CachedAttachment) throws(PodshimError) {
        do {
            try FileSystem.writeAtomically(cachePath(entry.containerID), entry.json.text, mode: 0o600)
        } catch {
            throw PodshimError(.internal, operation: "cache CNI attachment", subject: cachePath(entry.containerID),
                               errno: error.errno, message: error.description)
        }
    }

    func loadCache(_ podID: String) -> CachedAttachment? {
        guard let data = FileManager.default.contents(atPath: cachePath(podID)),
              let value = try? JSONValue.parse(Array(data)) else { return nil } // missing or damaged: none
        return CachedAttachment(json: value)
    }

    private func removeCache(_ podID: String) {
        unlink(cachePath(podID))
    }
}
