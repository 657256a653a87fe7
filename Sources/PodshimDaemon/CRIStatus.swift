import Foundation
import PodshimCgroups
import PodshimCRI
import PodshimRuntime
import PodshimSystem

/// The CRI's views of sandboxes and containers. Every function expects the sandbox's lock held,
/// except ``measureWritableLayer(_:)``.
enum CRIStatus {
    static func sandboxStatus(_ sandbox: ManagedSandbox) -> Runtime_V1_PodSandboxStatus {
        var status = Runtime_V1_PodSandboxStatus()
        status.id = sandbox.id
        status.metadata = sandbox.config.metadata
        status.state = sandbox.record.ready ? .sandboxReady : .sandboxNotready
        status.createdAt = sandbox.record.createdAt
        status.labels = sandbox.config.labels
        status.annotations = sandbox.config.annotations
        // The namespace modes in force: the kubelet compares network with the pod's hostNetwork
        // and replaces the sandbox when they differ.
        let spec = sandbox.pod.spec
        var options = Runtime_V1_NamespaceOption()
        options.network = spec.hostNetwork ? .node : .pod
        options.ipc = spec.hostIPC ? .node : .pod
        options.pid = spec.hostPID ? .node : spec.shareProcessNamespace ? .pod : .container
        status.linux.namespaces.options = options
        // `network` stays unset while the pod has no IP: present with an empty ip reads to the
        // kubelet as "this sandbox lost its network", and it replaces the sandbox.
        if let ips = sandbox.record.ips, let first = ips.first {
            status.network.ip = first
            status.network.additionalIps = ips.dropFirst().map { ip in
                var additional = Runtime_V1_PodIP()
                additional.ip = ip
                return additional
            }
        }
        return status
    }

    static func sandbox(_ sandbox: ManagedSandbox) -> Runtime_V1_PodSandbox {
        var item = Runtime_V1_PodSandbox()
        item.id = sandbox.id
        item.metadata = sandbox.config.metadata
        item.state = sandbox.record.ready ? .sandboxReady : .sandboxNotready
        item.createdAt = sandbox.record.createdAt
        item.labels = sandbox.config.labels
        item.annotations = sandbox.config.annotations
        return item
    }

    static func state(_ container: ManagedContainer) -> Runtime_V1_ContainerState {
        switch container.record.state {
        case .created: return .containerCreated
        case .running: return .containerRunning
        case .exited: return .containerExited
        }
    }

    static func containerStatus(_ container: ManagedContainer) -> Runtime_V1_ContainerStatus {
        let record = container.record
        var status = Runtime_V1_ContainerStatus()
        status.id = container.id
        status.metadata = container.config.metadata
        status.state = state(container)
        status.createdAt = record.createdAt
        status.startedAt = record.startedAt
        status.finishedAt = record.finishedAt
        status.exitCode = record.state == .exited ? record.exitCode : 0
        status.image = container.config.image
        // As containerd reports them: the image's reference (not the id the kubelet created it
        // with) and its repository digest; image_id stays the id.
        if let tag = record.imageRepoTag { status.image.image = tag }
        status.imageRef = record.imageRepoDigest ?? record.imageRef
        status.imageID = record.imageRef
        status.reason = record.state == .exited ? record.reason : ""
        status.message = record.message
        status.labels = container.config.labels
        status.annotations = container.config.annotations
        status.mounts = container.config.mounts
        status.logPath = record.logPath
        status.resources.linux = container.resources
        var linux = Runtime_V1_LinuxContainerUser()
        linux.uid = Int64(container.runtime.plan.uid)
        linux.gid = Int64(container.runtime.plan.gid)
        linux.supplementalGroups = container.runtime.plan.supplementaryGroups.map { Int64($0) }
        status.user.linux = linux
        return status
    }

    static func container(_ container: ManagedContainer) -> Runtime_V1_Container {
        var item = Runtime_V1_Container()
        item.id = container.id
        item.podSandboxID = container.sandboxID
        item.metadata = container.config.metadata
        item.image = container.config.image
        if let tag = container.record.imageRepoTag { item.image.image = tag }
        item.imageRef = container.record.imageRepoDigest ?? container.record.imageRef
        item.imageID = container.record.imageRef
        item.state = state(container)
        item.createdAt = container.record.createdAt
        item.labels = container.config.labels
        item.annotations = container.config.annotations
        return item
    }

    /// Without the writable layer's figures: see ``measureWritableLayer(_:)``.
    static func stats(_ container: ManagedContainer, layout: PodLayout) -> Runtime_V1_ContainerStats {
        var stats = Runtime_V1_ContainerStats()
        stats.attributes.id = container.id
        stats.attributes.metadata = container.config.metadata
        stats.attributes.labels = container.config.labels
        stats.attributes.annotations = container.config.annotations
        let now = nowNanoseconds()
        if let cgroup = container.runtime.cgroup {
            let usage = CgroupUsage.readForStats(cgroup)
            stats.cpu = cpu(usage, at: now, previous: &container.lastCPUSample)
            stats.memory = memory(usage, at: now)
        } else {
            stats.cpu.timestamp = now
            stats.memory.timestamp = now
        }
        stats.writableLayer.timestamp = now
        stats.writableLayer.fsID.mountpoint = layout.upperDirectory(container.runtime.name)
        return stats
    }

    /// Fills in the writable layer's bytes and inodes by walking it: call it without the
    /// sandbox's lock held (a large layer takes a while, and exits must not wait for it).
    static func measureWritableLayer(_ stats: inout Runtime_V1_ContainerStats) {
        guard let usage = FileSystem.usage(of: stats.writableLayer.fsID.mountpoint) else { return }
        stats.writableLayer.usedBytes.value = usage.bytes
        stats.writableLayer.inodesUsed.value = usage.inodes
    }

    /// CPU from cpu.stat usage_usec; usage_nano_cores from the change since the previous sample.
    static func cpu(_ usage: CgroupUsage, at now: Int64, previous: inout (time: Int64, usage: UInt64)?) -> Runtime_V1_CpuUsage {
        var cpu = Runtime_V1_CpuUsage()
        cpu.timestamp = now
        guard let micro = usage.cpuMicroseconds else { return cpu }
        let total = UInt64(max(0, micro)) * 1000
        cpu.usageCoreNanoSeconds.value = total
        if let previous, now > previous.time, total >= previous.usage {
            cpu.usageNanoCores.value = UInt64(Double(total - previous.usage) / Double(now - previous.time) * 1e9)
        }
        previous = (now, total)
        return cpu
    }

    /// Memory as containerd reports it: working set = usage − inactive_file; available = limit −
    /// working set; rss = anon. Unset where the memory controller is absent.
    static func memory(_ usage: CgroupUsage, at now: Int64) -> Runtime_V1_MemoryUsage {
        var memory = Runtime_V1_MemoryUsage()
        memory.timestamp = now
        guard let current = usage.memoryCurrentBytes else { return memory }
        memory.usageBytes.value = UInt64(max(0, current))
        if let workingSet = usage.workingSetBytes { memory.workingSetBytes.value = UInt64(workingSet) }
        if let available = usage.availableBytes { memory.availableBytes.value = UInt64(available) }
        if let anon = usage.memoryStat["anon"] { memory.rssBytes.value = UInt64(max(0, anon)) }
        if let faults = usage.memoryStat["pgfault"] { memory.pageFaults.value = UInt64(max(0, faults)) }
        if let faults = usage.memoryStat["pgmajfault"] { memory.majorPageFaults.value = UInt64(max(0, faults)) }
        return memory
    }

    /// A pod's stats: its cgroup's cpu, memory and process count, the network interfaces of its
    /// namespace (from the pause process's /proc/<pid>/net/dev, loopback left out), and the
    /// running containers' stats.
    static func podStats(_ sandbox: ManagedSandbox) -> Runtime_V1_PodSandboxStats {
        var stats = Runtime_V1_PodSandboxStats()
        stats.attributes.id = sandbox.id
        stats.attributes.metadata = sandbox.config.metadata
        stats.attributes.labels = sandbox.config.labels
        stats.attributes.annotations = sandbox.config.annotations
        let now = nowNanoseconds()
        if let cgroups = sandbox.pod.cgroups {
            // The pod cgroup (a kubelet's parent too, as containerd reads it).
            let usage = CgroupUsage.readForStats(cgroups.pod)
            stats.linux.cpu = cpu(usage, at: now, previous: &sandbox.lastCPUSample)
            stats.linux.memory = memory(usage, at: now)
            if let pids = usage.pids {
                stats.linux.process.timestamp = now
                stats.linux.process.processCount.value = UInt64(max(0, pids))
            }
        }
        if !sandbox.pod.spec.hostNetwork, let pause = sandbox.pod.sandbox,
           let text = try? FileSystem.readKernelFile("/proc/\(pause.pid)/net/dev") { // pause gone: no network stats
            var network = Runtime_V1_NetworkUsage()
            network.timestamp = now
            network.interfaces = interfaces(netDev: text)
            if let first = network.interfaces.first(where: { $0.name == "eth0" }) ?? network.interfaces.first {
                network.defaultInterface = first
            }
            stats.linux.network = network
        }
        stats.linux.containers = sandbox.containers.filter { $0.record.state == .running }
            .map { Self.stats($0, layout: sandbox.pod.layout) }
        return stats
    }

    /// /proc/net/dev: `name: rx_bytes rx_packets rx_errs … tx_bytes tx_packets tx_errs …`.
    static func interfaces(netDev text: String) -> [Runtime_V1_NetworkInterfaceUsage] {
        text.split(separator: "\n").dropFirst(2).compactMap { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let fields = parts[1].split(separator: " ").compactMap { UInt64($0) }
            guard name != "lo", fields.count >= 11 else { return nil }
            var usage = Runtime_V1_NetworkInterfaceUsage()
            usage.name = name
            usage.rxBytes.value = fields[0]
            usage.rxErrors.value = fields[2]
            usage.txBytes.value = fields[8]
            usage.txErrors.value = fields[10]
            return usage
        }
    }
}
