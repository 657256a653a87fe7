import Foundation
import Glibc
import PodshimCgroups
import PodshimSystem
import PodshimProcess

/// Cleans up after a podshim that died without tearing its pods down: kills the processes it
/// recorded (only if PID *and* start time still match), unmounts and removes the pod's directories.
public enum Recovery {
    /// Removes every pod whose owning podshim is gone. Returns one line per action or problem.
    @discardableResult
    /// `hierarchy`: the cgroup v2 hierarchy, when the caller has already detected it.
    /// Pods of `podshim serve` are left to the daemon, which re-adopts them, unless `includeDaemonPods`.
    public static func cleanUpAbandonedPods(
        configuration: RuntimeConfiguration, hierarchy: CgroupHierarchy? = CgroupHierarchy.detect(),
        includeDaemonPods: Bool = false
    ) -> [String] {
        var report: [String] = []
        let statePods = configuration.stateDirectory + "/pods"
        let dataPods = configuration.rootDirectory + "/pods"
        var live: Set<String> = []
        /// Releases what pods attached to the network (the cache says how, whatever --network is now).
        let network = configuration.cniManager(forCleanup: true)
        for id in (try? FileManager.default.contentsOfDirectory(atPath: statePods)) ?? [] { // no pods directory yet: nothing to clean up
            let directory = statePods + "/" + id
            guard let record = PodStateRecord.load(directory + "/pod.json") else { // missing or unreadable: an incomplete pod (reported)
                if isOld(directory) {
                    report += remove([directory, dataPods + "/" + id], what: "incomplete pod \(id)")
                } else {
                    live.insert(id) // being created right now by another podshim
                }
                continue
            }
            if record.owner.isAlive || (record.daemon == true && !includeDaemonPods) {
                live.insert(id)
                continue
            }
            if let path = record.cgroup {
                do {
                    try Cgroup(path: path).remove() // cgroup.kill: every process of the pod, escaped ones too
                } catch {
                    report.append("could not remove cgroup of pod \(record.name): \(error)")
                }
            }
            if let parent = record.cgroupParent {
                // A kubelet's pod cgroup: only podshim's leaves in it (named by the pod and container ids).
                let ids = Set([record.podID] + record.containers.keys)
                // The kubelet may have removed its parent: nothing of ours left.
                for leaf in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
                    where ids.contains(leaf) || ids.contains(where: { leaf == "podshim-\($0).scope" }) {
                    do {
                        try Cgroup(path: parent + "/" + leaf).remove()
                    } catch {
                        report.append("could not remove cgroup \(parent)/\(leaf) of pod \(record.name): \(error)")
                    }
                }
            }
            for (name, identity) in record.containers.sorted(by: { $0.key < $1.key }) {
                if kill(identity) { report.append("killed container \(name) (pid \(identity.pid)) of pod \(record.name)") }
            }
            if let sandbox = record.sandbox, kill(sandbox) {
                report.append("killed sandbox (pid \(sandbox.pid)) of pod \(record.name)")
            }
            // Its network attachment, if it had one (nothing cached: nothing to do).
            do {
                try network?.detach(podID: id)
            } catch {
                report.append("could not release the network of pod \(record.name): \(error)")
            }
            report += remove([record.stateDirectory, record.dataDirectory], what: "pod \(record.name) (\(id))")
        }
        // Pod cgroups without a live pod (e.g. their state was lost). Only empty ones: a populated
        // cgroup not recorded here may belong to another podshim (another state directory, or
        // `podshim serve`), and killing it would kill pods that are not ours.
        if let hierarchy {
            let podshim = (configuration.cgroupRoot ?? hierarchy.mountPoint) + "/podshim"
            // No podshim cgroup directory: nothing to clean up.
            for name in (try? FileManager.default.contentsOfDirectory(atPath: podshim)) ?? [] where name.hasPrefix("pod-") {
                let id = String(name.dropFirst(4))
                guard !live.contains(id), !FileManager.default.fileExists(atPath: statePods + "/" + id) else { continue }
                // …and not one another podshim is setting up right now (created, pause not yet in it).
                guard !Cgroup(path: podshim + "/" + name).isPopulated, isOld(podshim + "/" + name) else { continue }
                do {
                    try Cgroup(path: podshim + "/" + name).remove()
                    report.append("removed cgroup of pod \(id)")
                } catch {
                    report.append("could not remove cgroup of pod \(id): \(error)")
                }
            }
        }
        // Network attachments and pinned namespaces of pods whose state is gone (a reboot wiped
        // /run, or a crash came between the removal above and the DEL): released. A pod being set
        // up has its state directory before its attachment, so it is never taken for gone.
        let statePodsNow = Set((try? FileManager.default.contentsOfDirectory(atPath: statePods)) ?? []) // none: no pod is live
        report += network?.collectGarbage(live: statePodsNow) ?? []
        // Data left without state (e.g. /run was wiped by a reboot).
        // No data directory: nothing to clean up.
        for id in (try? FileManager.default.contentsOfDirectory(atPath: dataPods)) ?? [] where !live.contains(id) {
            let directory = dataPods + "/" + id
            if !FileManager.default.fileExists(atPath: statePods + "/" + id) && isOld(directory) {
                report += remove([directory], what: "data of pod \(id)")
            }
        }
        return report
    }

    /// Whether `identity` was alive and has been killed. Waits (bounded) until it is gone.
    static func kill(_ identity: ProcessIdentity) -> Bool {
        // The process may have exited already: ESRCH is expected.
        guard identity.isAlive, let handle = try? ProcessHandle(opening: identity.pid) else { return false }
        // The pidfd now pins the process: check again that it is the one we recorded.
        // Refused: not counted as killed; the cgroup removal above kills it.
        guard identity.isAlive, (try? handle.send(.kill)) == true else { return false }
        Kernel.waitReadable(handle.pidfd, milliseconds: 5000)
        return true
    }

    private static func remove(_ directories: [String], what: String) -> [String] {
        var lines: [String] = []
        for directory in directories {
            do {
                try FileSystem.removeTree(directory)
            } catch {
                lines.append("could not clean up \(what): \(error)")
            }
        }
        return lines.isEmpty ? ["cleaned up \(what)"] : lines
    }

    private static func isOld(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return time(nil) - info.st_mtim.tv_sec > 60
    }
}
