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
    /// - Parameter yaml: the manifest text, a single YAML document (empty documents around it,
    ///   such as a leading or trailing `---`, are ignored).
    /// - Returns: the validated pod, with defaults filled in.
    /// - Throws: ``ManifestError`` for the first problem found. YAML syntax errors, an empty
    ///   document, a document that is not a mapping and a stream of several documents (which
    ///   ``parseAll(yaml:)`` reads) are reported at the path `manifest`.
    public static func parse(yaml: String) throws(ManifestError) -> PodSpec {
        let documents = try ManifestNode.documents(yaml: yaml)
        guard let first = documents.first else {
            throw ManifestError(path: "manifest", message: "empty")
        }
        guard documents.count == 1 else {
            let line = documents[1].node.line.map { " (the second starts at line \($0))" } ?? ""
            throw ManifestError(path: "manifest",
                                message: "several documents\(line): use ManifestParser.parseAll to read more than one pod")
        }
        return try parseDocument(first.node, at: "manifest")
    }

    /// Parses and validates a stream of Pod manifests, YAML documents separated by `---`; empty
    /// documents are skipped.
    ///
    /// - Returns: the validated pods, in the order of the stream.
    /// - Throws: ``ManifestError`` for the first problem found. With one document, exactly as
    ///   ``parse(yaml:)``; with several, the path starts with the document's position in the
    ///   stream, counting empty ones (`documents[1].spec.containers[0].image`, `documents[2]` for
    ///   the document itself). Pod names must be unique in the stream, and so must the uids it
    ///   gives. The ``YAMLBudget`` applies to the stream as a whole.
    public static func parseAll(yaml: String) throws(ManifestError) -> [PodSpec] {
        let documents = try ManifestNode.documents(yaml: yaml)
        guard let first = documents.first else {
            throw ManifestError(path: "manifest", message: "empty")
        }
        if documents.count == 1 { return [try parseDocument(first.node, at: "manifest")] }

        var pods: [PodSpec] = []
        var names: [String: Int] = [:]
        var uids: [String: Int] = [:]
        for (index, node) in documents {
            let document = "documents[\(index)]"
            let pod: PodSpec
            do {
                pod = try parseDocument(node, at: "")
            } catch {
                let path = error.path.isEmpty || error.path.hasPrefix("[") ? document + error.path : "\(document).\(error.path)"
                throw ManifestError(path: path, message: error.message)
            }
            if let earlier = names.updateValue(index, forKey: pod.name) {
                throw ManifestError(path: "\(document).metadata.name",
                                    message: "\"\(pod.name)\" is already the name of documents[\(earlier)]")
            }
            if let uid = pod.uid, let earlier = uids.updateValue(index, forKey: uid) {
                throw ManifestError(path: "\(document).metadata.uid",
                                    message: "\"\(uid)\" is already the uid of documents[\(earlier)]")
            }
            pods.append(pod)
        }
        return pods
    }

    /// Reads the file at `path` and parses it as a Pod manifest.
    ///
    /// - Throws: ``ManifestError`` at the path `manifest` when the file cannot be read or is not
    ///   UTF-8 text, and otherwise as ``parse(yaml:)``.
    public static func parse(contentsOf path: String) throws(ManifestError) -> PodSpec {
        try parse(yaml: text(contentsOf: path))
    }

    /// Reads the file at `path` and parses it as a stream of Pod manifests.
    ///
    /// - Throws: ``ManifestError`` at the path `manifest` when the file cannot be read or is not
    ///   UTF-8 text, and otherwise as ``parseAll(yaml:)``.
    public static func parseAll(contentsOf path: String) throws(ManifestError) -> [PodSpec] {
        try parseAll(yaml: text(contentsOf: path))
    }

    private static func text(contentsOf path: String) throws(ManifestError) -> String {
        let bytes = try ManifestFile.contents(of: path)
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw ManifestError(path: "manifest", message: "cannot read \(path): not UTF-8 text")
        }
        return text
    }

    /// One document as a pod; an error about the document itself is thrown at `documentPath`.
    private static func parseDocument(_ document: ManifestNode, at documentPath: String) throws(ManifestError) -> PodSpec {
        guard case .mapping = document.node else {
            throw ManifestError(path: documentPath, message: "must be a mapping (a Pod manifest)")
        }
        do {
            return try parsePod(document)
        } catch where error.path.isEmpty {
            // Only the document itself has the empty path.
            throw ManifestError(path: documentPath, message: error.message)
        }
    }

    // MARK: - Pod, metadata, spec

    private static let podFields: Set<String> = ["apiVersion", "kind", "metadata", "spec"]
    private static let metadataFields: Set<String> = ["name", "namespace", "uid", "labels", "annotations"]
    private static let specFields: Set<String> = [
        "hostname", "restartPolicy", "terminationGracePeriodSeconds", "shareProcessNamespace",
        "hostNetwork", "hostPID", "hostIPC",
        "securityContext", "volumes", "containers", "dnsPolicy", "dnsConfig",
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
        (result.dnsPolicy, result.podDNSConfig) = try parseDNS(in: spec)
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
