import GRPCCore
import PodshimCRI
@testable import PodshimDaemon
import PodshimImages
import PodshimSpec
import PodshimSystem
import XCTest

/// The CRI configs map onto the same pod model `podshim run` uses; bad fields are named.
final class CRITranslationTests: XCTestCase {
    private func sandboxConfig(name: String = "web", uid: String = "u-1", namespace: String = "default") -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = name
        config.metadata.uid = uid
        config.metadata.namespace = namespace
        return config
    }

    private func containerConfig(_ command: [String] = ["sleep", "1"]) -> Runtime_V1_ContainerConfig {
        var config = Runtime_V1_ContainerConfig()
        config.metadata.name = "app"
        config.image.image = "busybox"
        config.command = command
        return config
    }

    private func assertInvalid(_ field: String, file: StaticString = #filePath, line: UInt = #line,
                               _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? PodshimError else { return XCTFail("not a PodshimError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.code, .invalidArgument, file: file, line: line)
            XCTAssertEqual(error.subject, field, file: file, line: line)
            // What the client sees: InvalidArgument, the message naming the field first.
            XCTAssertEqual(RPCError(error).code, .invalidArgument, file: file, line: line)
            XCTAssertTrue(RPCError(error).message.hasPrefix(field + ":"), "\(error) does not name \(field)", file: file, line: line)
        }
    }

    func testSandboxBecomesAPodWithoutContainers() throws {
        var config = sandboxConfig()
        config.hostname = "web-0"
        config.labels = ["app": "web"]
        config.linux.securityContext.runAsUser.value = 1000
        config.linux.securityContext.supplementalGroups = [5, 6]
        let pod = try CRITranslation.pod(config)
        XCTAssertEqual(pod.name, "web")
        XCTAssertEqual(pod.namespace, "default")
        XCTAssertEqual(pod.uid, "u-1")
        XCTAssertEqual(pod.hostname, "web-0")
        XCTAssertEqual(pod.labels, ["app": "web"])
        XCTAssertEqual(pod.securityContext.runAsUser, 1000)
        XCTAssertEqual(pod.securityContext.supplementalGroups, [5, 6])
        XCTAssertTrue(pod.containers.isEmpty)
        XCTAssertFalse(pod.shareProcessNamespace, "no namespace options: a PID namespace per container")
    }

    func testHostnameDefaultsToTheName() throws {
        XCTAssertEqual(try CRITranslation.pod(sandboxConfig(name: "api")).hostname, "api")
    }

    func testPodPIDNamespaceIsShared() throws {
        var config = sandboxConfig()
        config.linux.securityContext.namespaceOptions.pid = .pod
        XCTAssertTrue(try CRITranslation.pod(config).shareProcessNamespace)
    }

    func testMissingMetadataFieldsAreNamed() {
        assertInvalid("config.metadata") { _ = try CRITranslation.pod(Runtime_V1_PodSandboxConfig()) }
        assertInvalid("config.metadata.name") { _ = try CRITranslation.pod(self.sandboxConfig(name: "")) }
        assertInvalid("config.metadata.uid") { _ = try CRITranslation.pod(self.sandboxConfig(uid: "")) }
        assertInvalid("config.metadata.namespace") { _ = try CRITranslation.pod(self.sandboxConfig(namespace: "")) }
        assertInvalid("config.metadata.name") { _ = try CRITranslation.pod(self.sandboxConfig(name: "../etc")) }
        assertInvalid("config.metadata.uid") { _ = try CRITranslation.pod(self.sandboxConfig(uid: String(repeating: "u", count: 300))) }
    }

    func testHostNamespacesBecomeHostPods() throws {
        var config = sandboxConfig()
        config.linux.securityContext.namespaceOptions.network = .node
        config.linux.securityContext.namespaceOptions.ipc = .node
        config.linux.securityContext.namespaceOptions.pid = .node
        let pod = try CRITranslation.pod(config)
        XCTAssertTrue(pod.hostNetwork)
        XCTAssertTrue(pod.hostIPC)
        XCTAssertTrue(pod.hostPID)
        XCTAssertFalse(pod.shareProcessNamespace)
        config = sandboxConfig()
        config.linux.securityContext.namespaceOptions.pid = .target
        assertInvalid("config.linux.security_context.namespace_options.pid") { _ = try CRITranslation.pod(config) }
        config = sandboxConfig()
        config.linux.securityContext.namespaceOptions.network = .container
        assertInvalid("config.linux.security_context.namespace_options.network") { _ = try CRITranslation.pod(config) }
    }

    func testSysctlsOnlyNamespacedOnes() throws {
        var config = sandboxConfig()
        config.linux.sysctls = ["kernel.shm_rmid_forced": "1", "net/ipv4/ip_unprivileged_port_start": "0"]
        let pod = try CRITranslation.pod(config)
        XCTAssertEqual(pod.sysctls, [Sysctl(name: "kernel.shm_rmid_forced", value: "1"),
                                     Sysctl(name: "net.ipv4.ip_unprivileged_port_start", value: "0")])
        XCTAssertEqual(pod.sysctls[1].procPath, "/proc/sys/net/ipv4/ip_unprivileged_port_start")
        config.linux.sysctls = ["kernel.pid_max": "100000"]
        assertInvalid("config.linux.sysctls[\"kernel.pid_max\"]") { _ = try CRITranslation.pod(config) }
        config.linux.sysctls = ["net.ipv4.../x": "1"]
        assertInvalid("config.linux.sysctls[\"net.ipv4.../x\"]") { _ = try CRITranslation.pod(config) }
        config = sandboxConfig()
        config.linux.securityContext.namespaceOptions.network = .node
        config.linux.sysctls = ["net.ipv4.ip_forward": "1"]
        assertInvalid("config.linux.sysctls[\"net.ipv4.ip_forward\"]") { _ = try CRITranslation.pod(config) }
    }

    func testDNSConfigBecomesResolvConf() throws {
        var config = sandboxConfig()
        config.dnsConfig.servers = ["10.10.10.10"]
        config.dnsConfig.searches = ["google.com", "svc.local"]
        config.dnsConfig.options = ["ndots:8"]
        let pod = try CRITranslation.pod(config)
        let text = try XCTUnwrap(pod.dnsConfig?.resolvConf)
        XCTAssertTrue(text.contains("nameserver 10.10.10.10\n"))
        XCTAssertTrue(text.contains("search google.com svc.local\n"))
        XCTAssertTrue(text.contains("options ndots:8\n"))
        config.dnsConfig.servers = ["10.0.0.1\nnameserver 1.2.3.4"]
        assertInvalid("config.dns_config.servers[0]") { _ = try CRITranslation.pod(config) }
    }

    func testRunAsGroupNeedsAUser() {
        var config = containerConfig()
        config.linux.securityContext.runAsGroup.value = 1002
        assertInvalid("config.linux.security_context.run_as_group") {
            _ = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        }
        var sandbox = sandboxConfig()
        sandbox.linux.securityContext.runAsGroup.value = 5
        assertInvalid("config.linux.security_context.run_as_group") { _ = try CRITranslation.pod(sandbox) }
    }

    func testUserNamesAndGroupPolicies() throws {
        var image = ImageDefaults()
        image.users = ImageUsers(passwd: "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/:/bin/sh\n",
                                 group: "root:x:0:\nwheel:x:10:app,other\ndocker:x:50000:app\n")
        var config = containerConfig()
        config.linux.securityContext.runAsUsername = "nobody"
        var spec = try CRITranslation.container(config, key: "abc", image: image).container
        XCTAssertEqual(spec.securityContext.runAsUser, 65534)
        XCTAssertEqual(spec.securityContext.runAsGroup, 65534)
        config.linux.securityContext.runAsUsername = "ghost"
        assertInvalid("config.linux.security_context.run_as_username") {
            _ = try CRITranslation.container(config, key: "abc", image: image)
        }
        config = containerConfig()
        config.linux.securityContext.runAsUser.value = 1000
        config.linux.securityContext.supplementalGroups = [1234]
        spec = try CRITranslation.container(config, key: "abc", image: image).container
        XCTAssertEqual(spec.securityContext.supplementalGroups, [1000, 1234, 10, 50000],
                       "the primary group, the given ones, and with Merge the image's memberships")
        XCTAssertEqual(spec.securityContext.runAsGroup, 1000, "the uid's primary group in /etc/passwd")
        config.linux.securityContext.supplementalGroupsPolicy = .strict
        spec = try CRITranslation.container(config, key: "abc", image: image).container
        XCTAssertEqual(spec.securityContext.supplementalGroups, [1000, 1234])
        image.user = "app"
        spec = try CRITranslation.container(containerConfig(), key: "abc", image: image).container
        XCTAssertEqual(spec.securityContext.runAsUser, 1000, "the image's USER name, resolved")
    }

    func testMaskedAndReadonlyPathsAreUsedAsSent() throws {
        var config = containerConfig()
        config.linux.securityContext.maskedPaths = ["/proc/kcore", "/bin/ls"]
        config.linux.securityContext.readonlyPaths = []
        let spec = try CRITranslation.container(config, key: "abc", image: ImageDefaults()).container
        XCTAssertEqual(spec.securityContext.maskedPaths, ["/proc/kcore", "/bin/ls"])
        XCTAssertEqual(spec.securityContext.readOnlyPaths, [])
        config.linux.securityContext.maskedPaths = ["relative"]
        assertInvalid("config.linux.security_context.masked_paths[0]") {
            _ = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        }
    }

    func testMountPropagationRules() throws {
        var config = containerConfig()
        var mount = Runtime_V1_Mount()
        mount.hostPath = "/tmp"
        mount.containerPath = "/mnt"
        mount.propagation = .propagationBidirectional
        config.mounts = [mount]
        assertInvalid("config.mounts[0].propagation") {
            _ = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        }
        config.linux.securityContext.privileged = true
        XCTAssertEqual(try CRITranslation.container(config, key: "abc", image: ImageDefaults()).container.volumeMounts[0].propagation,
                       .bidirectional)
        mount.propagation = .propagationHostToContainer
        mount.recursiveReadOnly = true
        mount.readonly = true
        config.mounts = [mount]
        assertInvalid("config.mounts[0].recursive_read_only") {
            _ = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        }
    }

    func testPIDTargetNamesTheContainer() throws {
        var config = containerConfig()
        config.linux.securityContext.namespaceOptions.pid = .target
        assertInvalid("config.linux.security_context.namespace_options.target_id") {
            _ = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        }
        config.linux.securityContext.namespaceOptions.targetID = "f00"
        XCTAssertEqual(try CRITranslation.container(config, key: "abc", image: ImageDefaults()).container.pidNamespace, .target("f00"))
    }

    func testCgroupResourcesKeepTheCRIValues() throws {
        var resources = Runtime_V1_LinuxContainerResources()
        resources.cpuPeriod = 50_000
        resources.cpuQuota = 25_000
        resources.cpuShares = 512
        resources.memoryLimitInBytes = 64 << 20
        resources.memorySwapLimitInBytes = 96 << 20
        resources.cpusetCpus = "0-1"
        resources.unified = ["memory.high": "50000000"]
        var limit = Runtime_V1_HugepageLimit()
        limit.pageSize = "2MB"
        limit.limit = 0
        resources.hugepageLimits = [limit]
        let translated = try CRITranslation.cgroupResources(resources, field: "r")
        XCTAssertEqual(translated.cpuQuotaMicroseconds, 25_000)
        XCTAssertEqual(translated.cpuShares, 512)
        XCTAssertEqual(translated.cpusetCPUs, "0-1")
        XCTAssertEqual(translated.hugepageLimits, ["2MB": 0])
        XCTAssertEqual(translated.unified, ["memory.high": "50000000"])
        resources.unified = ["../cpu.max": "1"]
        assertInvalid("r.unified[\"../cpu.max\"]") { _ = try CRITranslation.cgroupResources(resources, field: "r") }
        resources.unified = [:]
        resources.memorySwapLimitInBytes = 1 << 20
        assertInvalid("r.memory_swap_limit_in_bytes") { _ = try CRITranslation.cgroupResources(resources, field: "r") }
        resources.memorySwapLimitInBytes = 0
        resources.oomScoreAdj = 2000
        assertInvalid("r.oom_score_adj") { _ = try CRITranslation.cgroupResources(resources, field: "r") }
    }

    func testBadHostnameAndLogDirectory() {
        var config = sandboxConfig()
        config.hostname = "no spaces"
        assertInvalid("config.hostname") { _ = try CRITranslation.pod(config) }
        config = sandboxConfig()
        config.logDirectory = "relative/logs"
        assertInvalid("config.log_directory") { _ = try CRITranslation.pod(config) }
    }

    func testContainerCommandEnvAndSecurity() throws {
        var config = containerConfig(["/bin/sh", "-c"])
        config.args = ["echo hi"]
        config.workingDir = "/tmp"
        var variable = Runtime_V1_KeyValue()
        variable.key = "GREETING"
        variable.value = "hello"
        config.envs = [variable]
        config.linux.securityContext.capabilities.addCapabilities = ["NET_ADMIN"]
        config.linux.securityContext.capabilities.dropCapabilities = ["CAP_CHOWN"]
        config.linux.securityContext.runAsUser.value = 1000
        config.linux.securityContext.runAsGroup.value = 2000
        config.linux.securityContext.readonlyRootfs = true
        config.linux.securityContext.noNewPrivs = true
        let addition = try CRITranslation.container(config, key: "abc", image: ImageDefaults())
        let spec = addition.container
        XCTAssertEqual(spec.name, "abc", "the layout name is the container id")
        XCTAssertEqual(spec.command, ["/bin/sh", "-c"])
        XCTAssertEqual(spec.args, ["echo hi"])
        XCTAssertEqual(spec.workingDir, "/tmp")
        XCTAssertEqual(spec.env, [EnvVar(name: "GREETING", value: "hello")])
        XCTAssertEqual(spec.securityContext.capabilities, CapabilityChanges(add: ["NET_ADMIN"], drop: ["CAP_CHOWN"]))
        XCTAssertEqual(spec.securityContext.runAsUser, 1000)
        XCTAssertEqual(spec.securityContext.runAsGroup, 2000)
        XCTAssertEqual(spec.securityContext.readOnlyRootFilesystem, true)
        XCTAssertEqual(spec.securityContext.allowPrivilegeEscalation, false)
        XCTAssertEqual(spec.securityContext.seccompProfile, SeccompProfileSpec(type: .unconfined),
                       "unset: Unconfined, as containerd and CRI-O (the kubelet asks for RuntimeDefault explicitly)")
    }

    func testImageDefaultsFillTheGaps() throws {
        let image = ImageDefaults(entrypoint: ["/entry"], cmd: ["--serve"], env: ["PATH=/usr/bin", "MODE=prod"],
                                  workingDir: "/srv", user: "1001:1001")
        var config = containerConfig([])
        var spec = try CRITranslation.container(config, key: "k", image: image).container
        XCTAssertEqual(spec.command + spec.args, ["/entry", "--serve"])
        XCTAssertEqual(spec.workingDir, "/srv")
        XCTAssertEqual(spec.securityContext.runAsUser, 1001)
        XCTAssertEqual(spec.env.map(\.name), ["PATH", "MODE"])
        config.args = ["--debug"]
        spec = try CRITranslation.container(config, key: "k", image: image).container
        XCTAssertEqual(spec.command + spec.args, ["/entry", "--debug"], "args replace the image's cmd only")
        config.command = ["/other"]
        config.args = []
        spec = try CRITranslation.container(config, key: "k", image: image).container
        XCTAssertEqual(spec.command + spec.args, ["/other"], "a command replaces entrypoint and cmd")
    }

    func testContainerWithoutAnyCommandIsRefused() {
        assertInvalid("config.command") { _ = try CRITranslation.container(self.containerConfig([]), key: "k", image: ImageDefaults()) }
    }

    func testContainerFieldErrors() {
        var config = containerConfig()
        config.metadata.name = ""
        assertInvalid("config.metadata.name") { _ = try CRITranslation.container(config, key: "k", image: ImageDefaults()) }
        config = containerConfig()
        config.image.image = ""
        assertInvalid("config.image.image") { _ = try CRITranslation.container(config, key: "k", image: ImageDefaults()) }
        config = containerConfig()
        var mount = Runtime_V1_Mount()
        mount.containerPath = "data"
        mount.hostPath = "/tmp"
        config.mounts = [mount]
        assertInvalid("config.mounts[0].container_path") { _ = try CRITranslation.container(config, key: "k", image: ImageDefaults()) }
        config = containerConfig()
        var variable = Runtime_V1_KeyValue()
        variable.key = "A=B"
        config.envs = [variable]
        assertInvalid("config.envs[0].key") { _ = try CRITranslation.container(config, key: "k", image: ImageDefaults()) }
        config = containerConfig()
        config.linux.securityContext.runAsUser.value = -1
        assertInvalid("config.linux.security_context.run_as_user") { _ = try CRITranslation.container(config, key: "k", image: ImageDefaults()) }
    }

    func testInteractiveFieldsAreCarried() throws {
        var config = containerConfig()
        config.stdin = true
        config.stdinOnce = true
        config.tty = true
        let container = try CRITranslation.container(config, key: "k", image: ImageDefaults()).container
        XCTAssertTrue(container.stdin)
        XCTAssertTrue(container.stdinOnce)
        XCTAssertTrue(container.tty)
        let plain = try CRITranslation.container(containerConfig(), key: "k", image: ImageDefaults()).container
        XCTAssertFalse(plain.stdin || plain.stdinOnce || plain.tty)
    }

    func testMountsBecomeHostPathVolumes() throws {
        let directory = NSTemporaryDirectory() + "podshim-translation-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = FileManager.default.createFile(atPath: directory + "/file", contents: Data())
        var config = containerConfig()
        for (host, readonly) in [(directory, false), (directory + "/file", true), (directory + "/missing", false)] {
            var mount = Runtime_V1_Mount()
            mount.hostPath = host
            mount.containerPath = "/mnt/" + (host as NSString).lastPathComponent
            mount.readonly = readonly
            config.mounts.append(mount)
        }
        let addition = try CRITranslation.container(config, key: "0123456789abcdef", image: ImageDefaults())
        XCTAssertEqual(addition.volumes.map(\.source), [
            .hostPath(path: directory, type: .directory),
            .hostPath(path: directory + "/file", type: .file),
            .hostPath(path: directory + "/missing", type: .directoryOrCreate),
        ])
        XCTAssertEqual(addition.container.volumeMounts.map(\.readOnly), [false, true, false])
        XCTAssertEqual(Set(addition.volumes.map(\.name)).count, 3)
        XCTAssertEqual(addition.container.volumeMounts.map(\.name), addition.volumes.map(\.name))
    }

    func testResourcesBecomeKubernetesQuantities() throws {
        var resources = Runtime_V1_LinuxContainerResources()
        resources.cpuPeriod = 100_000
        resources.cpuQuota = 50_000
        resources.cpuShares = 256
        resources.memoryLimitInBytes = 256 << 20
        let requirements = try CRITranslation.resources(resources, field: "r")
        XCTAssertEqual(requirements.cpuLimitMillis, 500)
        XCTAssertEqual(requirements.cpuRequestMillis, 250)
        XCTAssertEqual(requirements.memoryLimitBytes, 256 << 20)

        resources = Runtime_V1_LinuxContainerResources()
        resources.cpuShares = 2 // the kubelet's "no request"
        XCTAssertNil(try CRITranslation.resources(resources, field: "r").cpuRequestMillis)
        resources.cpuShares = 102 // 100m
        XCTAssertEqual(try CRITranslation.resources(resources, field: "r").cpuRequestMillis, 100)
        resources = Runtime_V1_LinuxContainerResources()
        resources.cpuQuota = .max
        resources.cpuPeriod = 100_000
        XCTAssertEqual(try CRITranslation.resources(resources, field: "r").cpuLimitMillis, Int64.max / 100_000, "saturates")
    }

    func testNegativeOrAbsurdResourcesAreNamed() {
        var resources = Runtime_V1_LinuxContainerResources()
        resources.memoryLimitInBytes = -5
        assertInvalid("r.memory_limit_in_bytes") { _ = try CRITranslation.resources(resources, field: "r") }
        resources = Runtime_V1_LinuxContainerResources()
        resources.cpuQuota = 1000
        resources.cpuPeriod = 10
        assertInvalid("r.cpu_period") { _ = try CRITranslation.resources(resources, field: "r") }
    }

    func testSeccompChoices() throws {
        var context = Runtime_V1_LinuxContainerSecurityContext()
        XCTAssertEqual(try CRITranslation.seccomp(context), SeccompProfileSpec(type: .unconfined))
        context.seccomp.profileType = .unconfined
        XCTAssertEqual(try CRITranslation.seccomp(context), SeccompProfileSpec(type: .unconfined))
        context.seccomp.profileType = .localhost
        context.seccomp.localhostRef = "/profiles/x.json"
        XCTAssertEqual(try CRITranslation.seccomp(context), SeccompProfileSpec(type: .localhost, localhostProfile: "/profiles/x.json"))
        context = Runtime_V1_LinuxContainerSecurityContext()
        context.seccompProfilePath = "runtime/default"
        XCTAssertEqual(try CRITranslation.seccomp(context), SeccompProfileSpec(type: .runtimeDefault))
        context.seccompProfilePath = "bogus"
        assertInvalid("config.linux.security_context.seccomp_profile_path") { _ = try CRITranslation.seccomp(context) }
    }
}
