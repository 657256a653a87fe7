/// Parsing `spec.securityContext` and `spec.containers[].securityContext`.
///
/// Only the fields in ``SecurityContext`` and ``PodSecurityContext`` are accepted; the rest of
/// Kubernetes' (`seLinuxOptions`, `procMount`, `fsGroup`, `sysctls`, `windowsOptions`,
/// `appArmorProfile`, …) are `unknown field`, since podshim does not apply them.
extension ManifestParser {
    private static let containerSecurityFields: Set<String> = [
        "privileged", "capabilities", "seccompProfile", "allowPrivilegeEscalation", "runAsUser", "runAsGroup",
        "runAsNonRoot", "readOnlyRootFilesystem",
    ]
    private static let podSecurityFields: Set<String> = [
        "runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups", "seccompProfile",
    ]
    private static let capabilitiesFields: Set<String> = ["add", "drop"]
    private static let seccompProfileFields: Set<String> = ["type", "localhostProfile"]

    /// The largest uid or gid Kubernetes accepts (2³¹ − 1).
    static let maxID = 2_147_483_647
    static let idRule = "must be between 0 and 2147483647"
    static let capabilityRule = "must be a capability name"

    /// `spec.securityContext: { runAsUser, runAsGroup, runAsNonRoot, supplementalGroups, seccompProfile }`;
    /// empty when absent or null.
    static func parsePodSecurityContext(in spec: ManifestMapping) throws(ManifestError) -> PodSecurityContext {
        guard let context = try spec.mapping("securityContext", accepting: podSecurityFields) else {
            return PodSecurityContext()
        }
        let runAsUser = try id(context, "runAsUser")
        let runAsGroup = try id(context, "runAsGroup")
        let runAsNonRoot = try context.bool("runAsNonRoot")
        var supplementalGroups: [Int64] = []
        for element in try context.field("supplementalGroups")?.list() ?? [] {
            supplementalGroups.append(try id(element))
        }
        let seccompProfile = try parseSeccompProfile(context)
        return PodSecurityContext(
            runAsUser: runAsUser, runAsGroup: runAsGroup, runAsNonRoot: runAsNonRoot,
            supplementalGroups: supplementalGroups, seccompProfile: seccompProfile
        )
    }

    /// A container's `securityContext`, empty when absent or null, with Kubernetes' cross-field
    /// rules: `allowPrivilegeEscalation: false` conflicts with `privileged: true` and with adding
    /// `SYS_ADMIN`. `runAsNonRoot` (the container's, else the pod's) also conflicts with an
    /// explicit uid 0 (the container's, else the pod's); that error is reported at the container's
    /// `securityContext.runAsNonRoot` even when both values come from the pod.
    static func parseSecurityContext(
        _ container: ManifestMapping, pod: PodSecurityContext
    ) throws(ManifestError) -> SecurityContext {
        let context = try container.mapping("securityContext", accepting: containerSecurityFields)
            ?? .empty(at: container.path(of: "securityContext"))
        let privileged = try context.bool("privileged")
        let capabilities = try parseCapabilities(context)
        let seccompProfile = try parseSeccompProfile(context)
        let allowPrivilegeEscalation = try context.bool("allowPrivilegeEscalation")
        let runAsUser = try id(context, "runAsUser")
        let runAsGroup = try id(context, "runAsGroup")
        let runAsNonRoot = try context.bool("runAsNonRoot")
        let readOnlyRootFilesystem = try context.bool("readOnlyRootFilesystem")

        if allowPrivilegeEscalation == false {
            let path = context.path(of: "allowPrivilegeEscalation")
            if privileged == true {
                throw ManifestError(path: path, message: "cannot be false when privileged is true")
            }
            if let capabilities, capabilities.add.contains(where: isSysAdmin) {
                throw ManifestError(path: path, message: "cannot be false when capabilities.add includes SYS_ADMIN")
            }
        }
        if (runAsNonRoot ?? pod.runAsNonRoot) == true, (runAsUser ?? pod.runAsUser) == 0 {
            throw ManifestError(
                path: context.path(of: "runAsNonRoot"), message: "the container would run as root (runAsUser 0)"
            )
        }

        return SecurityContext(
            privileged: privileged, capabilities: capabilities, seccompProfile: seccompProfile,
            allowPrivilegeEscalation: allowPrivilegeEscalation, runAsUser: runAsUser, runAsGroup: runAsGroup,
            runAsNonRoot: runAsNonRoot, readOnlyRootFilesystem: readOnlyRootFilesystem
        )
    }

    /// `capabilities: { add: [names], drop: [names] }`, nil when absent or null. Each name must be
    /// `[A-Za-z0-9_]+`; whether the kernel knows it is for the runtime to check.
    private static func parseCapabilities(_ context: ManifestMapping) throws(ManifestError) -> CapabilityChanges? {
        guard let capabilities = try context.mapping("capabilities", accepting: capabilitiesFields) else {
            return nil
        }
        var changes = CapabilityChanges()
        for key in ["add", "drop"] {
            let names = try capabilities.stringList(key)
            if let index = names.firstIndex(where: { !isCapabilityName($0) }) {
                throw ManifestError(path: "\(capabilities.path(of: key))[\(index)]", message: capabilityRule)
            }
            if key == "add" { changes.add = names } else { changes.drop = names }
        }
        return changes
    }

    /// `seccompProfile: { type, localhostProfile }`, nil when absent or null. `type` is required;
    /// `localhostProfile` is required with `Localhost` and refused with any other type. An empty
    /// `localhostProfile` counts as absent, as other empty strings do.
    private static func parseSeccompProfile(_ context: ManifestMapping) throws(ManifestError) -> SeccompProfileSpec? {
        guard let profile = try context.mapping("seccompProfile", accepting: seccompProfileFields) else {
            return nil
        }
        let kinds = SeccompProfileSpec.Kind.allCases
        guard let type = try profile.oneOf("type", kinds.map(\.rawValue)).flatMap(SeccompProfileSpec.Kind.init(rawValue:)) else {
            throw ManifestError(path: profile.path(of: "type"), message: "required")
        }
        let localhostProfile = try profile.string("localhostProfile")
        let path = profile.path(of: "localhostProfile")
        if type == .localhost {
            guard let localhostProfile else {
                throw ManifestError(path: path, message: "required when type is Localhost")
            }
            guard !PathRules.hasParentComponent(localhostProfile) else {
                throw ManifestError(path: path, message: "must not contain '..'")
            }
        } else if localhostProfile != nil {
            throw ManifestError(path: path, message: "only allowed when type is Localhost")
        }
        return SeccompProfileSpec(type: type, localhostProfile: localhostProfile)
    }

    /// Field `key` as a uid or gid, or nil when absent.
    private static func id(_ mapping: ManifestMapping, _ key: String) throws(ManifestError) -> Int64? {
        guard let node = mapping.field(key) else { return nil }
        return try id(node)
    }

    /// The node as a uid or gid: an integer from 0 to 2147483647.
    private static func id(_ node: ManifestNode) throws(ManifestError) -> Int64 {
        let value = try node.int()
        guard (0...maxID).contains(value) else { throw node.error(idRule) }
        return Int64(value)
    }

    /// Whether `name` is `[A-Za-z0-9_]+`.
    static func isCapabilityName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "_"
        }
    }

    /// Whether `name` is `SYS_ADMIN` or `CAP_SYS_ADMIN`, in any case.
    private static func isSysAdmin(_ name: String) -> Bool {
        let upper = name.uppercased()
        return upper == "SYS_ADMIN" || upper == "CAP_SYS_ADMIN"
    }
}
