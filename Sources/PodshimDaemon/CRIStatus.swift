import Foundation
import PodshimCgroups
import PodshimCRI
import PodshimRuntime

/// The CRI's views of sandboxes and containers. Every function expects the sandbox's lock held.
enum CRIStatus {
    static func sandboxStatus(_ sandbox: ManagedSandbox) -> Runtime_V1_PodSandboxStatus {
        var status = Runtime_V1_PodSandboxStatus()
        status.id = sandbox.id
        status.metadata = sandbox.config.metadata
        status.state = sandbox.record.ready ? .sandboxReady : .sandboxNotready
        status.createdAt = sandbox.record.createdAt
        status.labels = sandbox.config.labels
        status.annotations = sandbox.config.annotations
        var options = Runtime_V1_NamespaceOption()
        options.network = .pod
        options.ipc = .pod
        options.pid = sandbox.pod.spec.shareProcessNamespace ? .pod : .container
        status.linux.namespaces.options = options
        // Pods have a loopback-only network namespace: there is no pod IP to report.
        status.network = Runtime_V1_PodSandboxNetworkStatus()
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
        status.imageRef = record.imageRef
        status.imageID = record.imageRef
        status.reason = record.state == .exited ? record.reason : ""
        status.message = record.message
        status.labels = container.config.labels
        status.annotations = container.config.annotations
        status.mounts = container.config.mounts
        status.logPath = record.logPath
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
        item.imageRef = container.record.imageRef
        item.imageID = container.record.imageRef
        item.state = state(container)
        item.createdAt = container.record.createdAt
        item.labels = container.config.labels
        item.annotations = container.config.annotations
        return item
    }

    static func stats(_ container: ManagedContainer) -> Runtime_V1_ContainerStats {
        var stats = Runtime_V1_ContainerStats()
        stats.attributes.id = container.id
        stats.attributes.metadata = container.config.metadata
        stats.attributes.labels = container.config.labels
        stats.attributes.annotations = container.config.annotations
        let now = nowNanoseconds()
        stats.cpu.timestamp = now
        stats.memory.timestamp = now
        if let cgroup = container.runtime.cgroup {
            let usage = CgroupUsage.read(cgroup)
            if let micro = usage.cpuMicroseconds {
                stats.cpu.usageCoreNanoSeconds.value = UInt64(max(0, micro)) * 1000
            }
            if let bytes = usage.memoryCurrentBytes {
                stats.memory.usageBytes.value = UInt64(max(0, bytes))
                stats.memory.workingSetBytes.value = UInt64(max(0, bytes))
            }
        }
        stats.writableLayer.timestamp = now
        stats.writableLayer.fsID.mountpoint = container.runtime.plan.rootfs ?? ""
        return stats
    }
}
