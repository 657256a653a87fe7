import Foundation

/// Turns a Kubernetes Pod manifest (YAML, `apiVersion: v1`, `kind: Pod`) into a validated ``PodSpec``.
///
/// Only the fields podshim implements are accepted; any other field is rejected as
/// `unknown field` rather than silently ignored, so a manifest never asks for something the
/// runtime will not do. The first problem found is thrown as a ``ManifestError`` naming the
/// field's full path, such as `spec.containers[1].command: must be a list of strings`.
///
/// Conventions, following Kubernetes' JSON semantics:
/// - a null value (`key: ~`, `key: null`, or `key:` alone) is the same as leaving the key out;
/// - an empty string is the same as leaving the key out, except inside lists and maps of strings;
/// - any scalar is accepted where a string is expected (`- 8080` in `command` is `"8080"`),
///   but integers and booleans must be written plainly (`"5"` is not an integer).
public enum ManifestParser {
    /// Parses and validates a Pod manifest.
    ///
    /// - Parameter yaml: the manifest text, a single YAML document.
    /// - Returns: the validated pod, with defaults filled in.
    /// - Throws: ``ManifestError`` for the first problem found. YAML syntax errors, an empty
    ///   document and a document that is not a mapping are reported at the path `manifest`.
    public static func parse(yaml: String) throws(ManifestError) -> PodSpec {
        guard let document = try ManifestNode.document(yaml: yaml), !document.isNull else {
            throw ManifestError(path: "manifest", message: "empty")
        }
        guard case .mapping = document.node else {
            throw ManifestError(path: "manifest", message: "must be a mapping (a Pod manifest)")
        }
        do {
            return try parsePod(document)
        } catch where error.path.isEmpty {
            // Only the document itself has the empty path.
            throw ManifestError(path: "manifest", message: error.message)
        }
    }

    /// Reads the file at `path` and parses it as a Pod manifest.
    ///
    /// - Throws: ``ManifestError`` at the path `manifest` when the file cannot be read or is not
    ///   UTF-8 text, and otherwise as ``parse(yaml:)``.
    public static func parse(contentsOf path: String) throws(ManifestError) -> PodSpec {
        let bytes = try ManifestFile.contents(of: path)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw ManifestError(path: "manifest", message: "cannot read \(path): not UTF-8 text")
        }
        return try parse(yaml: text)
    }

    // MARK: - Pod, metadata, spec

    private static let podFields: Set<String> = ["apiVersion", "kind", "metadata", "spec"]
    private static let metadataFields: Set<String> = ["name", "namespace", "uid", "labels", "annotations"]
    private static let specFields: Set<String> = [
        "hostname", "restartPolicy", "terminationGracePeriodSeconds", "shareProcessNamespace",
        "hostNetwork", "hostPID", "hostIPC",
        "securityContext", "volumes", "containers",
    ]

    /// The default for `spec.terminationGracePeriodSeconds`, as in Kubernetes.
    static let defaultGracePeriodSeconds: Int64 = 30

    private static func parsePod(_ document: ManifestNode) throws(ManifestError) -> PodSpec {
        let pod = try document.mapping(accepting: podFields)

        let apiVersion = try pod.requiredString("apiVersion")
        guard apiVersion == "v1" else { throw ManifestError(path: "apiVersion", message: "must be v1") }
        let kind = try pod.requiredString("kind")
        guard kind == "Pod" else { throw ManifestError(path: "kind", message: "must be Pod") }

        let metadata = try pod.mapping("metadata", accepting: metadataFields) ?? .empty(at: "metadata")
        let name = try metadata.requiredString("name")
        guard NameRules.isDNS1123Subdomain(name) else {
            throw ManifestError(path: "metadata.name", message: NameRules.subdomainRule)
        }
        let namespace = try metadata.string("namespace") ?? "default"
        guard NameRules.isDNS1123Label(namespace) else {
            throw ManifestError(path: "metadata.namespace", message: NameRules.labelRule)
        }
        let uid = try metadata.string("uid")
        if let uid, !NameRules.isValidUID(uid) {
            throw ManifestError(path: "metadata.uid", message: NameRules.uidRule)
        }
        let labels = try metadata.stringMap("labels")
        let annotations = try metadata.stringMap("annotations")

        let spec = try pod.mapping("spec", accepting: specFields) ?? .empty(at: "spec")
        let hostname = try spec.string("hostname")
        if let hostname, !NameRules.isDNS1123Label(hostname) {
            throw ManifestError(path: "spec.hostname", message: NameRules.labelRule)
        }
        let restartPolicy = try spec.oneOf("restartPolicy", RestartPolicy.allCases.map(\.rawValue))
            .flatMap(RestartPolicy.init(rawValue:)) ?? .always
        let gracePeriod = try spec.int("terminationGracePeriodSeconds").map(Int64.init) ?? defaultGracePeriodSeconds
        guard gracePeriod >= 0 else {
            throw ManifestError(path: "spec.terminationGracePeriodSeconds", message: "must not be negative")
        }
        let shareProcessNamespace = try spec.bool("shareProcessNamespace") ?? false
        let securityContext = try parsePodSecurityContext(in: spec)
        let volumes = try parseVolumes(in: spec)
        let containers = try parseContainers(in: spec, volumes: volumes, podSecurityContext: securityContext)

        var result = PodSpec(
            name: name, namespace: namespace, uid: uid, labels: labels, annotations: annotations,
            hostname: hostname ?? NameRules.defaultHostname(forPodName: name),
            restartPolicy: restartPolicy, terminationGracePeriodSeconds: gracePeriod,
            shareProcessNamespace: shareProcessNamespace, volumes: volumes, containers: containers,
            securityContext: securityContext
        )
        result.hostNetwork = try spec.bool("hostNetwork") ?? false
        result.hostPID = try spec.bool("hostPID") ?? false
        result.hostIPC = try spec.bool("hostIPC") ?? false
        if result.hostPID && shareProcessNamespace {
            throw ManifestError(path: "spec.shareProcessNamespace", message: "cannot be true together with hostPID")
        }
        for (index, container) in containers.enumerated() {
            for (mountIndex, mount) in container.volumeMounts.enumerated()
                where mount.propagation == .bidirectional && container.securityContext.privileged != true {
                throw ManifestError(path: "spec.containers[\(index)].volumeMounts[\(mountIndex)].mountPropagation",
                                    message: "Bidirectional needs a privileged container")
            }
        }
        return result
    }
}
