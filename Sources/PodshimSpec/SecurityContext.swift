/// The security settings of a pod and its containers: `spec.securityContext` and
/// `spec.containers[].securityContext`, the subset of Kubernetes' fields that podshim implements.
///
/// Values are kept as written (nil when a field is absent), so the runtime can tell "not set"
/// from an explicit value and apply Kubernetes' inheritance: a container's own value wins, else
/// the pod's (see `ContainerSpec.effectiveRunAsUser(pod:)` and its siblings).

/// A container's `securityContext`.
public struct SecurityContext: Equatable, Sendable {
    /// `privileged`: all capabilities, all devices, no seccomp filter.
    public var privileged: Bool?
    /// `capabilities`: changes to the default capability set; nil when absent.
    public var capabilities: CapabilityChanges?
    /// `seccompProfile`; nil when absent (the pod's profile, if any, applies).
    public var seccompProfile: SeccompProfileSpec?
    /// `allowPrivilegeEscalation`: whether `no_new_privs` is left unset.
    public var allowPrivilegeEscalation: Bool?
    /// `runAsUser`: 0…2147483647; nil when absent (the pod's value, then the image's, applies).
    public var runAsUser: Int64?
    /// `runAsGroup`: 0…2147483647; nil when absent.
    public var runAsGroup: Int64?
    /// `runAsNonRoot`: refuse to start the container as uid 0.
    public var runAsNonRoot: Bool?
    /// `readOnlyRootFilesystem`: mount the container's root filesystem read-only.
    public var readOnlyRootFilesystem: Bool?
    /// The container's own supplementary groups (the CRI sends the final list per container),
    /// added to the pod's; nil when absent.
    public var supplementalGroups: [Int64]?
    /// Paths masked in the container, as the CRI sends them; nil = podshim's default list.
    /// An empty list masks nothing (procMount: Unmasked).
    public var maskedPaths: [String]?
    /// Paths made read-only, as the CRI sends them; nil = podshim's default list.
    public var readOnlyPaths: [String]?

    public init(
        privileged: Bool? = nil, capabilities: CapabilityChanges? = nil,
        seccompProfile: SeccompProfileSpec? = nil, allowPrivilegeEscalation: Bool? = nil,
        runAsUser: Int64? = nil, runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil,
        readOnlyRootFilesystem: Bool? = nil
    ) {
        self.privileged = privileged
        self.capabilities = capabilities
        self.seccompProfile = seccompProfile
        self.allowPrivilegeEscalation = allowPrivilegeEscalation
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.readOnlyRootFilesystem = readOnlyRootFilesystem
    }

    /// Whether no field is set.
    public var isEmpty: Bool { self == SecurityContext() }
}

/// `securityContext.capabilities`: capability names to add to and drop from the default set.
///
/// Names are kept as written (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`), in order. The parser only
/// checks their shape (`[A-Za-z0-9_]+`); the runtime checks them against the kernel's list.
public struct CapabilityChanges: Equatable, Sendable {
    /// `add`, empty when absent.
    public var add: [String]
    /// `drop`, empty when absent.
    public var drop: [String]

    public init(add: [String] = [], drop: [String] = []) {
        self.add = add
        self.drop = drop
    }
}

/// `spec.securityContext`: the pod's defaults for its containers, and its supplementary groups.
public struct PodSecurityContext: Equatable, Sendable {
    /// `runAsUser`: 0…2147483647; nil when absent.
    public var runAsUser: Int64?
    /// `runAsGroup`: 0…2147483647; nil when absent.
    public var runAsGroup: Int64?
    /// `runAsNonRoot`.
    public var runAsNonRoot: Bool?
    /// `supplementalGroups`: each 0…2147483647, in manifest order; empty when absent.
    public var supplementalGroups: [Int64]
    /// `seccompProfile`; nil when absent.
    public var seccompProfile: SeccompProfileSpec?

    public init(
        runAsUser: Int64? = nil, runAsGroup: Int64? = nil, runAsNonRoot: Bool? = nil,
        supplementalGroups: [Int64] = [], seccompProfile: SeccompProfileSpec? = nil
    ) {
        self.runAsUser = runAsUser
        self.runAsGroup = runAsGroup
        self.runAsNonRoot = runAsNonRoot
        self.supplementalGroups = supplementalGroups
        self.seccompProfile = seccompProfile
    }

    /// Whether no field is set.
    public var isEmpty: Bool { self == PodSecurityContext() }
}

/// A `seccompProfile`: `{ type, localhostProfile }`.
///
/// The parser guarantees that `localhostProfile` is set exactly when `type` is `Localhost`, is
/// not empty and has no `..` component.
public struct SeccompProfileSpec: Equatable, Sendable {
    /// `seccompProfile.type`.
    public enum Kind: String, Equatable, Sendable, CaseIterable {
        /// The container runtime's default profile.
        case runtimeDefault = "RuntimeDefault"
        /// No seccomp filter.
        case unconfined = "Unconfined"
        /// A profile file on the node, named by `localhostProfile`.
        case localhost = "Localhost"
    }

    /// `type`.
    public var type: Kind
    /// `localhostProfile`: the profile file, as written; only with ``Kind/localhost``.
    public var localhostProfile: String?

    public init(type: Kind, localhostProfile: String? = nil) {
        self.type = type
        self.localhostProfile = localhostProfile
    }

    /// `{ type: RuntimeDefault }`.
    public static let runtimeDefault = SeccompProfileSpec(type: .runtimeDefault)
    /// `{ type: Unconfined }`.
    public static let unconfined = SeccompProfileSpec(type: .unconfined)

    /// `{ type: Localhost, localhostProfile: <profile> }`.
    public static func localhost(_ profile: String) -> SeccompProfileSpec {
        SeccompProfileSpec(type: .localhost, localhostProfile: profile)
    }
}

// MARK: - Inheritance from the pod

/// The settings a container runs with, by Kubernetes' rule: the container's own
/// `securityContext` value when it has one, else the pod's `spec.securityContext` value.
/// Nil means neither sets it, and the runtime's (or the image's) default applies.
extension ContainerSpec {
    /// The uid to run as: `securityContext.runAsUser`, else the pod's.
    public func effectiveRunAsUser(pod: PodSpec) -> Int64? {
        effectiveRunAsUser(pod: pod.securityContext)
    }

    /// The uid to run as: `securityContext.runAsUser`, else `pod.runAsUser`.
    public func effectiveRunAsUser(pod: PodSecurityContext) -> Int64? {
        securityContext.runAsUser ?? pod.runAsUser
    }

    /// The gid to run as: `securityContext.runAsGroup`, else the pod's.
    public func effectiveRunAsGroup(pod: PodSpec) -> Int64? {
        effectiveRunAsGroup(pod: pod.securityContext)
    }

    /// The gid to run as: `securityContext.runAsGroup`, else `pod.runAsGroup`.
    public func effectiveRunAsGroup(pod: PodSecurityContext) -> Int64? {
        securityContext.runAsGroup ?? pod.runAsGroup
    }

    /// Whether running as root is refused: `securityContext.runAsNonRoot`, else the pod's.
    /// An explicit `false` on the container overrides the pod's `true`.
    public func effectiveRunAsNonRoot(pod: PodSpec) -> Bool? {
        effectiveRunAsNonRoot(pod: pod.securityContext)
    }

    /// Whether running as root is refused: `securityContext.runAsNonRoot`, else `pod.runAsNonRoot`.
    public func effectiveRunAsNonRoot(pod: PodSecurityContext) -> Bool? {
        securityContext.runAsNonRoot ?? pod.runAsNonRoot
    }

    /// The seccomp profile: `securityContext.seccompProfile`, else the pod's. The profile is
    /// taken whole; its fields are never mixed between the two.
    public func effectiveSeccompProfile(pod: PodSpec) -> SeccompProfileSpec? {
        effectiveSeccompProfile(pod: pod.securityContext)
    }

    /// The seccomp profile: `securityContext.seccompProfile`, else `pod.seccompProfile`.
    public func effectiveSeccompProfile(pod: PodSecurityContext) -> SeccompProfileSpec? {
        securityContext.seccompProfile ?? pod.seccompProfile
    }
}
