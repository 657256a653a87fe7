import XCTest
@testable import PodshimSpec

/// `spec.securityContext` and `spec.containers[].securityContext`, and how containers inherit
/// the pod's values.
final class SecurityContextTests: XCTestCase {
    private let containerPath = "spec.containers[0].securityContext"

    /// A manifest whose pod has `securityContext: <pod>` (when given) and whose one container has
    /// `securityContext: <container>` (when given).
    private func securityManifest(pod: String? = nil, container: String? = nil) -> String {
        let podField = pod.map { "securityContext: \($0), " } ?? ""
        let containerField = container.map { ", securityContext: \($0)" } ?? ""
        return manifest(spec: "{ \(podField)containers: [{ name: app, image: busybox\(containerField) }] }")
    }

    private func containerContext(
        _ yaml: String, file: StaticString = #filePath, line: UInt = #line
    ) -> SecurityContext? {
        parseManifest(securityManifest(container: yaml), file: file, line: line)?.containers.first?.securityContext
    }

    private func podContext(
        _ yaml: String, file: StaticString = #filePath, line: UInt = #line
    ) -> PodSecurityContext? {
        parseManifest(securityManifest(pod: yaml), file: file, line: line)?.securityContext
    }

    private func assertContainerError(
        _ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertManifestError(securityManifest(container: yaml), "\(containerPath).\(expected)", file: file, line: line)
    }

    private func assertPodError(
        _ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertManifestError(securityManifest(pod: yaml), "spec.securityContext.\(expected)", file: file, line: line)
    }

    // MARK: - Parsing

    func testEveryContainerField() {
        let yaml = """
            { privileged: false, capabilities: { add: [NET_ADMIN, CAP_SYS_TIME, net_raw], drop: [ALL] },
              seccompProfile: { type: Localhost, localhostProfile: profiles/audit.json },
              allowPrivilegeEscalation: false, runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true,
              readOnlyRootFilesystem: true }
            """
        XCTAssertEqual(containerContext(yaml), SecurityContext(
            privileged: false,
            capabilities: CapabilityChanges(add: ["NET_ADMIN", "CAP_SYS_TIME", "net_raw"], drop: ["ALL"]),
            seccompProfile: SeccompProfileSpec(type: .localhost, localhostProfile: "profiles/audit.json"),
            allowPrivilegeEscalation: false, runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true,
            readOnlyRootFilesystem: true
        ))
    }

    func testEveryPodField() {
        XCTAssertEqual(
            podContext("{ runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true, supplementalGroups: [4000, 0, 2147483647], seccompProfile: { type: RuntimeDefault } }"),
            PodSecurityContext(
                runAsUser: 1000, runAsGroup: 3000, runAsNonRoot: true, supplementalGroups: [4000, 0, 2_147_483_647],
                seccompProfile: SeccompProfileSpec(type: .runtimeDefault)
            )
        )
    }

    func testBlockStyleManifest() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: { name: web }
            spec:
              securityContext:
                runAsUser: 1000
                runAsNonRoot: true
                supplementalGroups:
                - 5
                - 6
                seccompProfile:
                  type: RuntimeDefault
              containers:
              - name: app
                image: busybox
                securityContext:
                  runAsUser: 2000
                  capabilities:
                    add: ["NET_BIND_SERVICE"]
                    drop:
                    - ALL
                  seccompProfile:
                    type: Unconfined
              - name: sidecar
                image: busybox
            """
        let pod = try XCTUnwrap(parseManifest(yaml))
        XCTAssertEqual(pod.securityContext, PodSecurityContext(
            runAsUser: 1000, runAsNonRoot: true, supplementalGroups: [5, 6], seccompProfile: .runtimeDefault
        ))
        XCTAssertEqual(pod.containers[0].securityContext, SecurityContext(
            capabilities: CapabilityChanges(add: ["NET_BIND_SERVICE"], drop: ["ALL"]),
            seccompProfile: .unconfined, runAsUser: 2000
        ))
        XCTAssertEqual(pod.containers[1].securityContext, SecurityContext())
    }

    func testAbsentNullAndEmpty() throws {
        let pod = try XCTUnwrap(parseManifest(manifest()))
        XCTAssertEqual(pod.securityContext, PodSecurityContext())
        XCTAssertTrue(pod.securityContext.isEmpty)
        XCTAssertEqual(pod.containers.first?.securityContext, SecurityContext())
        XCTAssertEqual(pod.containers.first?.securityContext.isEmpty, true)

        for yaml in ["{}", "~", "null", "{ privileged: ~, runAsUser: null, seccompProfile: ~, capabilities: ~, runAsNonRoot: }"] {
            XCTAssertEqual(containerContext(yaml), SecurityContext(), yaml)
        }
        for yaml in ["{}", "~", "{ runAsUser: ~, supplementalGroups: ~, seccompProfile: null }", "{ supplementalGroups: [] }"] {
            XCTAssertEqual(podContext(yaml), PodSecurityContext(), yaml)
        }
        // A `capabilities` mapping that is written, even empty, is kept; its lists default to empty.
        for yaml in ["{ capabilities: {} }", "{ capabilities: { add: ~, drop: [] } }"] {
            XCTAssertEqual(containerContext(yaml), SecurityContext(capabilities: CapabilityChanges()), yaml)
        }
        // An empty localhostProfile counts as absent.
        XCTAssertEqual(
            containerContext("{ seccompProfile: { type: RuntimeDefault, localhostProfile: '' } }"),
            SecurityContext(seccompProfile: .runtimeDefault)
        )
        XCTAssertEqual(
            containerContext("{ seccompProfile: { type: Unconfined, localhostProfile: ~ } }"),
            SecurityContext(seccompProfile: .unconfined)
        )
        // Explicit false values are kept, not dropped.
        XCTAssertEqual(
            containerContext("{ privileged: false, allowPrivilegeEscalation: true, runAsNonRoot: false, readOnlyRootFilesystem: false }"),
            SecurityContext(privileged: false, allowPrivilegeEscalation: true, runAsNonRoot: false, readOnlyRootFilesystem: false)
        )
        XCTAssertFalse(SecurityContext(privileged: false).isEmpty)
        XCTAssertFalse(PodSecurityContext(supplementalGroups: [0]).isEmpty)
    }

    func testIDBounds() {
        XCTAssertEqual(
            containerContext("{ runAsUser: 0, runAsGroup: 2147483647 }"),
            SecurityContext(runAsUser: 0, runAsGroup: 2_147_483_647)
        )
        XCTAssertEqual(containerContext("{ runAsUser: +7, runAsGroup: -0 }"), SecurityContext(runAsUser: 7, runAsGroup: 0))
        XCTAssertEqual(podContext("{ runAsUser: 2147483647, runAsGroup: 0 }"), PodSecurityContext(runAsUser: 2_147_483_647, runAsGroup: 0))
        XCTAssertEqual(podContext("{ supplementalGroups: [1, 1] }"), PodSecurityContext(supplementalGroups: [1, 1]))
    }

    func testSeccompProfiles() {
        XCTAssertEqual(containerContext("{ seccompProfile: { type: RuntimeDefault } }"), SecurityContext(seccompProfile: .runtimeDefault))
        XCTAssertEqual(containerContext("{ seccompProfile: { type: Unconfined } }"), SecurityContext(seccompProfile: .unconfined))
        XCTAssertEqual(
            containerContext("{ seccompProfile: { type: Localhost, localhostProfile: my.json } }"),
            SecurityContext(seccompProfile: .localhost("my.json"))
        )
        // Kept as written; `..` inside a component is not a parent component.
        XCTAssertEqual(
            containerContext("{ seccompProfile: { localhostProfile: ./profiles//a..b.json, type: Localhost } }"),
            SecurityContext(seccompProfile: SeccompProfileSpec(type: .localhost, localhostProfile: "./profiles//a..b.json"))
        )
        XCTAssertEqual(
            podContext("{ seccompProfile: { type: Localhost, localhostProfile: /var/lib/podshim/seccomp/x.json } }"),
            PodSecurityContext(seccompProfile: .localhost("/var/lib/podshim/seccomp/x.json"))
        )
    }

    func testPrivilegeEscalationCombinationsThatAreAllowed() {
        XCTAssertEqual(
            containerContext("{ privileged: true, allowPrivilegeEscalation: true }"),
            SecurityContext(privileged: true, allowPrivilegeEscalation: true)
        )
        XCTAssertEqual(containerContext("{ privileged: true }"), SecurityContext(privileged: true))
        XCTAssertEqual(
            containerContext("{ privileged: false, allowPrivilegeEscalation: false }"),
            SecurityContext(privileged: false, allowPrivilegeEscalation: false)
        )
        XCTAssertEqual(
            containerContext("{ capabilities: { add: [SYS_ADMIN] }, allowPrivilegeEscalation: true }"),
            SecurityContext(capabilities: CapabilityChanges(add: ["SYS_ADMIN"]), allowPrivilegeEscalation: true)
        )
        XCTAssertEqual(
            containerContext("{ capabilities: { add: [SYS_ADMIN] } }"),
            SecurityContext(capabilities: CapabilityChanges(add: ["SYS_ADMIN"]))
        )
        // Dropping SYS_ADMIN, or adding a name that only contains it, is fine.
        XCTAssertEqual(
            containerContext("{ capabilities: { add: [SYS_ADMINX, CAP_SYS_ADMIN_2], drop: [SYS_ADMIN] }, allowPrivilegeEscalation: false }"),
            SecurityContext(
                capabilities: CapabilityChanges(add: ["SYS_ADMINX", "CAP_SYS_ADMIN_2"], drop: ["SYS_ADMIN"]),
                allowPrivilegeEscalation: false
            )
        )
    }

    func testRunAsNonRootThatIsAllowed() throws {
        XCTAssertEqual(containerContext("{ runAsNonRoot: true, runAsUser: 1 }"), SecurityContext(runAsUser: 1, runAsNonRoot: true))
        // Without any uid the runtime decides (it refuses root); the parser does not.
        XCTAssertEqual(containerContext("{ runAsNonRoot: true }"), SecurityContext(runAsNonRoot: true))
        XCTAssertEqual(containerContext("{ runAsNonRoot: false, runAsUser: 0 }"), SecurityContext(runAsUser: 0, runAsNonRoot: false))
        // The container's uid overrides the pod's 0.
        XCTAssertNotNil(parseManifest(securityManifest(pod: "{ runAsNonRoot: true, runAsUser: 0 }", container: "{ runAsUser: 1000 }")))
        // The container's runAsNonRoot: false overrides the pod's true.
        XCTAssertNotNil(parseManifest(securityManifest(pod: "{ runAsNonRoot: true }", container: "{ runAsNonRoot: false, runAsUser: 0 }")))
        XCTAssertNotNil(parseManifest(securityManifest(pod: "{ runAsNonRoot: true, runAsUser: 0 }", container: "{ runAsNonRoot: false }")))
        // The pod's settings alone are fine when no container would run as root.
        let pod = try XCTUnwrap(parseManifest(securityManifest(pod: "{ runAsNonRoot: true, runAsUser: 0 }", container: "{ runAsUser: 5 }")))
        XCTAssertEqual(pod.securityContext, PodSecurityContext(runAsUser: 0, runAsNonRoot: true))
    }

    // MARK: - Inheritance

    func testEffectiveValuesInheritFromThePod() throws {
        let yaml = securityManifest(
            pod: "{ runAsUser: 1000, runAsGroup: 2000, runAsNonRoot: true, seccompProfile: { type: RuntimeDefault } }",
            container: "{ readOnlyRootFilesystem: true }"
        )
        let pod = try XCTUnwrap(parseManifest(yaml))
        let container = try XCTUnwrap(pod.containers.first)
        XCTAssertEqual(container.securityContext, SecurityContext(readOnlyRootFilesystem: true))
        XCTAssertEqual(container.effectiveRunAsUser(pod: pod), 1000)
        XCTAssertEqual(container.effectiveRunAsGroup(pod: pod), 2000)
        XCTAssertEqual(container.effectiveRunAsNonRoot(pod: pod), true)
        XCTAssertEqual(container.effectiveSeccompProfile(pod: pod), .runtimeDefault)
        XCTAssertEqual(container.effectiveRunAsUser(pod: pod.securityContext), 1000)
        XCTAssertEqual(container.effectiveSeccompProfile(pod: pod.securityContext), .runtimeDefault)
    }

    func testContainerValuesWin() throws {
        let yaml = securityManifest(
            pod: "{ runAsUser: 1000, runAsGroup: 2000, runAsNonRoot: true, seccompProfile: { type: Localhost, localhostProfile: pod.json } }",
            container: "{ runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, seccompProfile: { type: Unconfined } }"
        )
        let pod = try XCTUnwrap(parseManifest(yaml))
        let container = try XCTUnwrap(pod.containers.first)
        XCTAssertEqual(container.effectiveRunAsUser(pod: pod), 0)
        XCTAssertEqual(container.effectiveRunAsGroup(pod: pod), 0)
        XCTAssertEqual(container.effectiveRunAsNonRoot(pod: pod), false)
        XCTAssertEqual(container.effectiveSeccompProfile(pod: pod), .unconfined)
    }

    func testEffectiveValuesWhenNeitherSets() throws {
        let pod = try XCTUnwrap(parseManifest(manifest()))
        let container = try XCTUnwrap(pod.containers.first)
        XCTAssertNil(container.effectiveRunAsUser(pod: pod))
        XCTAssertNil(container.effectiveRunAsGroup(pod: pod))
        XCTAssertNil(container.effectiveRunAsNonRoot(pod: pod))
        XCTAssertNil(container.effectiveSeccompProfile(pod: pod))
    }

    func testEffectiveValuesMixFieldByField() {
        // Each field is inherited on its own; a seccomp profile is taken whole.
        let pod = PodSpec(
            name: "web",
            containers: [
                ContainerSpec(name: "a", image: "i", securityContext: SecurityContext(runAsGroup: 7)),
                ContainerSpec(name: "b", image: "i", securityContext: SecurityContext(seccompProfile: .localhost("b.json"))),
            ],
            securityContext: PodSecurityContext(runAsUser: 42, runAsGroup: 43, seccompProfile: .localhost("pod.json"))
        )
        XCTAssertEqual(pod.containers[0].effectiveRunAsUser(pod: pod), 42)
        XCTAssertEqual(pod.containers[0].effectiveRunAsGroup(pod: pod), 7)
        XCTAssertNil(pod.containers[0].effectiveRunAsNonRoot(pod: pod))
        XCTAssertEqual(pod.containers[0].effectiveSeccompProfile(pod: pod), .localhost("pod.json"))
        XCTAssertEqual(pod.containers[1].effectiveRunAsGroup(pod: pod), 43)
        XCTAssertEqual(pod.containers[1].effectiveSeccompProfile(pod: pod), .localhost("b.json"))
    }

    func testModelDefaults() {
        let container = ContainerSpec(name: "a", image: "i")
        XCTAssertEqual(container.securityContext, SecurityContext())
        XCTAssertEqual(PodSpec(name: "p", containers: [container]).securityContext, PodSecurityContext())
        XCTAssertEqual(CapabilityChanges(), CapabilityChanges(add: [], drop: []))
        XCTAssertEqual(SeccompProfileSpec.localhost("x"), SeccompProfileSpec(type: .localhost, localhostProfile: "x"))
        XCTAssertNil(SeccompProfileSpec.runtimeDefault.localhostProfile)
        XCTAssertEqual(SeccompProfileSpec.Kind.allCases.map(\.rawValue), ["RuntimeDefault", "Unconfined", "Localhost"])
    }

    // MARK: - Errors: unknown fields and shapes

    func testUnknownContainerFields() {
        for key in ["seLinuxOptions", "procMount", "windowsOptions", "appArmorProfile", "fsGroup", "sysctls", "supplementalGroups"] {
            assertContainerError("{ \(key): {} }", "\(key): unknown field")
        }
        assertContainerError("{ capabilities: { add: [], ambient: [] } }", "capabilities.ambient: unknown field")
        assertContainerError("{ seccompProfile: { type: RuntimeDefault, profile: x } }", "seccompProfile.profile: unknown field")
        // An unknown field is reported before a bad value in the same mapping.
        assertContainerError("{ runAsUser: -1, procMount: Default }", "procMount: unknown field")
    }

    func testUnknownPodFields() {
        for key in ["seLinuxOptions", "fsGroup", "fsGroupChangePolicy", "sysctls", "windowsOptions", "appArmorProfile",
                    "supplementalGroupsPolicy", "privileged", "capabilities", "readOnlyRootFilesystem"] {
            assertPodError("{ \(key): 1 }", "\(key): unknown field")
        }
        assertPodError("{ seccompProfile: { type: Localhost, localhostProfile: x, extra: 1 } }", "seccompProfile.extra: unknown field")
    }

    func testNotMappings() {
        assertManifestError(securityManifest(container: "[]"), "\(containerPath): must be a mapping")
        assertManifestError(securityManifest(container: "privileged"), "\(containerPath): must be a mapping")
        assertManifestError(securityManifest(pod: "[]"), "spec.securityContext: must be a mapping")
        assertContainerError("{ capabilities: [NET_ADMIN] }", "capabilities: must be a mapping")
        assertContainerError("{ seccompProfile: RuntimeDefault }", "seccompProfile: must be a mapping")
        assertPodError("{ seccompProfile: [] }", "seccompProfile: must be a mapping")
    }

    func testBadBooleans() {
        for key in ["privileged", "allowPrivilegeEscalation", "runAsNonRoot", "readOnlyRootFilesystem"] {
            assertContainerError("{ \(key): yes }", "\(key): must be a boolean")
            assertContainerError("{ \(key): 'true' }", "\(key): must be a boolean")
        }
        assertPodError("{ runAsNonRoot: 1 }", "runAsNonRoot: must be a boolean")
    }

    // MARK: - Errors: uids and gids

    func testIDsOutOfRange() {
        for key in ["runAsUser", "runAsGroup"] {
            for value in ["-1", "2147483648", "4294967295", "9223372036854775807"] {
                assertContainerError("{ \(key): \(value) }", "\(key): must be between 0 and 2147483647")
                assertPodError("{ \(key): \(value) }", "\(key): must be between 0 and 2147483647")
            }
        }
        assertPodError("{ supplementalGroups: [1, -5] }", "supplementalGroups[1]: must be between 0 and 2147483647")
        assertPodError("{ supplementalGroups: [2147483648] }", "supplementalGroups[0]: must be between 0 and 2147483647")
    }

    func testIDsThatAreNotIntegers() {
        for value in ["'1000'", "1000.0", "1e3", "0x10", "010", "root", "[1]", "99999999999999999999"] {
            assertContainerError("{ runAsUser: \(value) }", "runAsUser: must be an integer")
        }
        assertContainerError("{ runAsGroup: true }", "runAsGroup: must be an integer")
        assertPodError("{ runAsUser: '0' }", "runAsUser: must be an integer")
        assertPodError("{ supplementalGroups: [1, ~] }", "supplementalGroups[1]: must be an integer")
        assertPodError("{ supplementalGroups: [\"1\"] }", "supplementalGroups[0]: must be an integer")
        assertPodError("{ supplementalGroups: [[1]] }", "supplementalGroups[0]: must be an integer")
        assertPodError("{ supplementalGroups: 1 }", "supplementalGroups: must be a list")
        assertPodError("{ supplementalGroups: { a: 1 } }", "supplementalGroups: must be a list")
    }

    // MARK: - Errors: capabilities

    func testBadCapabilityNames() {
        let rule = "must be a capability name"
        assertContainerError("{ capabilities: { add: [''] } }", "capabilities.add[0]: \(rule)")
        assertContainerError("{ capabilities: { add: [NET_ADMIN, 'NET ADMIN'] } }", "capabilities.add[1]: \(rule)")
        assertContainerError("{ capabilities: { add: [NET-ADMIN] } }", "capabilities.add[0]: \(rule)")
        assertContainerError("{ capabilities: { drop: [ALL, CAP_KILL, \"CAP_KILL\\t\"] } }", "capabilities.drop[2]: \(rule)")
        assertContainerError("{ capabilities: { drop: [Ñ] } }", "capabilities.drop[0]: \(rule)")
        assertContainerError("{ capabilities: { drop: [cap.kill] } }", "capabilities.drop[0]: \(rule)")
        // add is checked before drop.
        assertContainerError("{ capabilities: { drop: [' '], add: [' '] } }", "capabilities.add[0]: \(rule)")
    }

    func testCapabilityListsOfTheWrongType() {
        assertContainerError("{ capabilities: { add: NET_ADMIN } }", "capabilities.add: must be a list of strings")
        assertContainerError("{ capabilities: { drop: [ALL, ~] } }", "capabilities.drop: must be a list of strings")
        assertContainerError("{ capabilities: { drop: [[ALL]] } }", "capabilities.drop: must be a list of strings")
    }

    // MARK: - Errors: seccomp profiles

    func testSeccompProfileType() {
        let oneOf = "seccompProfile.type: must be one of RuntimeDefault, Unconfined, Localhost"
        assertContainerError("{ seccompProfile: { type: runtimeDefault } }", oneOf)
        assertContainerError("{ seccompProfile: { type: Default } }", oneOf)
        assertPodError("{ seccompProfile: { type: UNCONFINED } }", oneOf)
        assertContainerError("{ seccompProfile: {} }", "seccompProfile.type: required")
        assertContainerError("{ seccompProfile: { type: '' } }", "seccompProfile.type: required")
        assertContainerError("{ seccompProfile: { type: ~ } }", "seccompProfile.type: required")
        assertContainerError("{ seccompProfile: { localhostProfile: x.json } }", "seccompProfile.type: required")
        assertPodError("{ seccompProfile: {} }", "seccompProfile.type: required")
        assertContainerError("{ seccompProfile: { type: [Localhost] } }", "seccompProfile.type: must be a string")
    }

    func testLocalhostProfileRequiredOnlyWithLocalhost() {
        assertManifestError(
            securityManifest(container: "{ seccompProfile: { type: Localhost } }"),
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: required when type is Localhost"
        )
        assertContainerError(
            "{ seccompProfile: { type: Localhost, localhostProfile: '' } }",
            "seccompProfile.localhostProfile: required when type is Localhost"
        )
        assertPodError(
            "{ seccompProfile: { type: Localhost, localhostProfile: ~ } }",
            "seccompProfile.localhostProfile: required when type is Localhost"
        )
        assertManifestError(
            securityManifest(container: "{ seccompProfile: { type: RuntimeDefault, localhostProfile: x.json } }"),
            "spec.containers[0].securityContext.seccompProfile.localhostProfile: only allowed when type is Localhost"
        )
        assertContainerError(
            "{ seccompProfile: { type: Unconfined, localhostProfile: x.json } }",
            "seccompProfile.localhostProfile: only allowed when type is Localhost"
        )
        assertPodError(
            "{ seccompProfile: { type: RuntimeDefault, localhostProfile: x.json } }",
            "seccompProfile.localhostProfile: only allowed when type is Localhost"
        )
    }

    func testLocalhostProfileWithParentComponents() {
        for profile in ["..", "../x.json", "profiles/../../x.json", "/var/lib/../x.json", "a/.."] {
            assertContainerError(
                "{ seccompProfile: { type: Localhost, localhostProfile: '\(profile)' } }",
                "seccompProfile.localhostProfile: must not contain '..'"
            )
        }
        assertPodError(
            "{ seccompProfile: { type: Localhost, localhostProfile: ../x } }",
            "seccompProfile.localhostProfile: must not contain '..'"
        )
        assertContainerError(
            "{ seccompProfile: { type: Localhost, localhostProfile: [x] } }",
            "seccompProfile.localhostProfile: must be a string"
        )
        assertContainerError(
            #"{ seccompProfile: { type: Localhost, localhostProfile: "x\0y" } }"#,
            "seccompProfile.localhostProfile: must not contain a NUL character"
        )
    }

    // MARK: - Errors: cross-field rules

    func testPrivilegedWithoutPrivilegeEscalation() {
        let message = "spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false when privileged is true"
        assertManifestError(securityManifest(container: "{ privileged: true, allowPrivilegeEscalation: false }"), message)
        assertManifestError(securityManifest(container: "{ allowPrivilegeEscalation: false, privileged: true }"), message)
        // privileged is reported before SYS_ADMIN.
        assertManifestError(
            securityManifest(container: "{ privileged: true, allowPrivilegeEscalation: false, capabilities: { add: [SYS_ADMIN] } }"),
            message
        )
    }

    func testSysAdminWithoutPrivilegeEscalation() {
        let message = "spec.containers[0].securityContext.allowPrivilegeEscalation: cannot be false when capabilities.add includes SYS_ADMIN"
        for name in ["SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "cap_sys_admin", "Cap_Sys_Admin"] {
            assertManifestError(
                securityManifest(container: "{ allowPrivilegeEscalation: false, capabilities: { add: [NET_RAW, \(name)] } }"),
                message
            )
        }
    }

    func testRunAsNonRootWithRootUser() {
        let message = "spec.containers[0].securityContext.runAsNonRoot: the container would run as root (runAsUser 0)"
        assertManifestError(securityManifest(container: "{ runAsNonRoot: true, runAsUser: 0 }"), message)
        // From the pod, in either field or both.
        assertManifestError(securityManifest(pod: "{ runAsNonRoot: true }", container: "{ runAsUser: 0 }"), message)
        assertManifestError(securityManifest(pod: "{ runAsUser: 0 }", container: "{ runAsNonRoot: true }"), message)
        assertManifestError(securityManifest(pod: "{ runAsNonRoot: true, runAsUser: 0 }"), message)
        assertManifestError(securityManifest(pod: "{ runAsNonRoot: true, runAsUser: 0 }", container: "{}"), message)
        assertManifestError(securityManifest(pod: "{ runAsNonRoot: false, runAsUser: 1 }", container: "{ runAsNonRoot: true, runAsUser: 0 }"), message)
        // The first container that would run as root is named.
        assertManifestError(
            manifest(spec: "{ securityContext: { runAsNonRoot: true }, containers: [{ name: a, image: b, securityContext: { runAsUser: 1 } }, { name: c, image: b, securityContext: { runAsUser: 0 } }] }"),
            "spec.containers[1].securityContext.runAsNonRoot: the container would run as root (runAsUser 0)"
        )
    }

    func testErrorOrder() {
        // The pod's security context is checked before the containers.
        assertManifestError(
            securityManifest(pod: "{ runAsUser: -1 }", container: "{ runAsUser: -1 }"),
            "spec.securityContext.runAsUser: must be between 0 and 2147483647"
        )
        // A bad value is reported before a cross-field conflict.
        assertContainerError(
            "{ privileged: true, allowPrivilegeEscalation: false, runAsGroup: -1 }",
            "runAsGroup: must be between 0 and 2147483647"
        )
        // A container's other fields come before its security context.
        assertManifestError(
            securityManifest(container: "{ runAsUser: -1 }").replacingOccurrences(of: "image: busybox", with: "image: busybox, workingDir: x"),
            "spec.containers[0].workingDir: must be an absolute path"
        )
    }
}
