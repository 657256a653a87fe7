import Foundation
import Glibc
import XCTest

/// What must show, 1: containers share the pause process's net/IPC/UTS namespaces and hostname,
/// and each has its own mount and PID namespace in which it is PID 1.
final class PodNamespaceTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    func testContainersJoinThePauseNamespacesAndOwnTheirMountAndPIDNamespaces() throws {
        let uid = "ns-" + UUID().uuidString.prefix(8).lowercased()
        let probe = """
            echo "host=$(hostname)"; echo "etc=$(cat /etc/hostname)"
            for n in net ipc uts mnt pid; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done
            echo "pid=$$"
            touch /sys/podshim-probe 2>/dev/null && echo sys=rw || echo sys=ro
            until [ -e /sync/go ]; do sleep 0.05; done
            """
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: nsprobe, uid: \(uid) }
            spec:
              hostname: probe-host
              restartPolicy: Never
              terminationGracePeriodSeconds: 2
              volumes: [{ name: sync, emptyDir: {} }]
              containers:
              - name: a
                image: busybox
                command: [sh, -c, \(json(probe))]
                volumeMounts: [{ name: sync, mountPath: /sync }]
              - name: b
                image: busybox
                command: [sh, -c, \(json(probe))]
                volumeMounts: [{ name: sync, mountPath: /sync }]
            """)
        try harness.eventually("both containers to report") {
            run.lines(of: "a").contains { $0.hasPrefix("sys=") } && run.lines(of: "b").contains { $0.hasPrefix("sys=") }
        }
        let pids = try harness.recordedPIDs(uid: uid, waitingFor: 2)
        let pause = try XCTUnwrap(pids.sandbox)
        let pauseNamespaces = ["net", "ipc", "uts"].map { namespaceLink(pid: pause, $0) }
        let containerNamespaces = pids.containers.values.flatMap { pid in ["mnt", "pid"].compactMap { namespaceLink(pid: pid, $0) } }
        XCTAssertEqual(pids.containers.count, 2)
        _ = FileManager.default.createFile(atPath: harness.rootDir + "/pods/\(uid)/volumes/sync/go", contents: nil)
        XCTAssertEqual(try run.wait(), 0, run.stderr)

        func values(_ container: String) -> [String: String] {
            Dictionary(run.lines(of: container).compactMap { line in
                line.firstIndex(of: "=").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) }
            }, uniquingKeysWith: { $1 })
        }
        let a = values("a"), b = values("b")
        for (name, seen) in [("a", a), ("b", b)] {
            XCTAssertEqual(seen["host"], "probe-host", name)
            XCTAssertEqual(seen["etc"], "probe-host", name)
            XCTAssertEqual(seen["pid"], "1", "\(name) must be PID 1 of its own PID namespace")
            XCTAssertEqual(seen["sys"], "ro", "\(name): /sys must be read-only")
            XCTAssertEqual(seen["ns_net"], pauseNamespaces[0], "\(name) net namespace")
            XCTAssertEqual(seen["ns_ipc"], pauseNamespaces[1], "\(name) ipc namespace")
            XCTAssertEqual(seen["ns_uts"], pauseNamespaces[2], "\(name) uts namespace")
        }
        let host = getpid()
        for kind in ["net", "ipc", "uts", "mnt", "pid"] {
            XCTAssertNotNil(a["ns_" + kind])
            XCTAssertNotEqual(a["ns_" + kind], namespaceLink(pid: host, kind), "a shares the host's \(kind) namespace")
        }
        XCTAssertNotEqual(a["ns_mnt"], b["ns_mnt"], "containers must not share a mount namespace")
        XCTAssertNotEqual(a["ns_pid"], b["ns_pid"], "containers must not share a PID namespace")

        let recorded = [pause] + Array(pids.containers.values)
        XCTAssertEqual(harness.leftovers(processes: recorded, namespaces: pauseNamespaces.compactMap { $0 } + containerNamespaces), [])
    }

    func testShareProcessNamespacePutsContainersInThePodPIDNamespace() throws {
        let probe = "echo \"pid=$(readlink /proc/self/ns/pid)\"; echo \"one=$(cat /proc/1/cmdline | tr '\\\\0' ' ')\""
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: shared-pid }
            spec:
              restartPolicy: Never
              shareProcessNamespace: true
              containers:
              - { name: a, image: busybox, command: [sh, -c, \(json(probe))] }
              - { name: b, image: busybox, command: [sh, -c, \(json(probe))] }
            """)
        XCTAssertEqual(status, 0, run.stderr)
        let a = run.lines(of: "a"), b = run.lines(of: "b")
        XCTAssertEqual(a.first { $0.hasPrefix("pid=") }, b.first { $0.hasPrefix("pid=") })
        XCTAssertNotEqual(a.first { $0.hasPrefix("pid=") }, "pid=" + (namespaceLink(pid: getpid(), "pid") ?? ""))
        XCTAssertTrue(a.contains { $0.hasPrefix("one=") && $0.contains("podshim-pause") }, "PID 1 must be the pause process: \(a)")
        XCTAssertEqual(harness.leftovers(), [])
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
func json(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}
