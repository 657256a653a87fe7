import Foundation
import Glibc
import PodshimCgroups
import PodshimRuntime
import PodshimSpec
import PodshimSystem
import XCTest

/// A container of the pod swaps its volume's `sub` directory for a symlink to a host directory,
/// as fast as it can, while its sibling starts again and again with `subPath: sub`. The subPath is
/// opened beneath the volume (openat2 RESOLVE_BENEATH) and that very descriptor is mounted, so the
/// sibling sees the volume's directory or does not start — never the host directory.
/// 200 starts here; `PODSHIM_RACE_ITERATIONS=1000` for the manual run.
final class SubPathRaceTests: XCTestCase {
    func testASymlinkSwappedUnderASubPathNeverReachesTheHost() throws {
        let harness = try PodshimHarness.make()
        defer { harness.tearDown() }
        let iterations = Int(ProcessInfo.processInfo.environment["PODSHIM_RACE_ITERATIONS"] ?? "") ?? 200
        let secret = harness.base + "/host-secret"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: secret + "/secret", contents: Data("host\n".utf8)))
        let spec = try ManifestParser.parse(yaml: """
            apiVersion: v1
            kind: Pod
            metadata: {name: race}
            spec:
              terminationGracePeriodSeconds: 0
              volumes: [{name: v, emptyDir: {}}]
              containers:
              - name: swapper
                image: busybox
                command: [sh, -c, "while true; do rm -rf /v/sub; mkdir /v/sub; usleep 2000; rm -rf /v/sub; ln -s \(secret) /v/sub; usleep 2000; done"]
                volumeMounts: [{name: v, mountPath: /v}]
              - name: reader
                image: busybox
                command: [sh, -c, "test -e /data/secret && exit 42; exit 0"]
                volumeMounts: [{name: v, mountPath: /data, subPath: sub}]
            """)
        let configuration = RuntimeConfiguration(
            stateDirectory: harness.stateDir, rootDirectory: harness.rootDir, imageDirectory: PodshimHarness.imageDir,
            logDirectory: harness.logDir, pauseBinary: PodshimHarness.buildDirectory + "/podshim-pause")
        let layout = PodLayout(pod: spec, podID: UUID().uuidString.lowercased(), configuration: configuration)
        let plans = try PodPlanner.plan(spec, layout: layout, configuration: configuration)
        let pod = Pod(spec: spec, layout: layout, configuration: configuration, plans: plans,
                      cgroupHierarchy: CgroupHierarchy.detect())
        try pod.prepare()
        try pod.startSandbox()
        let swapper = pod.containers[0]
        let reader = pod.containers[1]
        defer {
            swapper.kill()
            pod.killSandbox()
            var pending = 2
            while pending > 0, let event = pod.events.nextBlocking(until: MonotonicInstant.now().advanced(bySeconds: 10)) {
                switch event {
                case .containerExited(name: "swapper", _), .sandboxExited: pending -= 1
                default: break
                }
            }
            XCTAssertEqual(pod.removeResources().map(\.description), [])
        }
        try pod.start(swapper, sink: nil)

        /// The reader's exit status, when a child was started for it.
        func readerExit() -> ExitStatus? {
            guard reader.isAwaitingExit else { return nil }
            while let event = pod.events.nextBlocking(until: MonotonicInstant.now().advanced(bySeconds: 30)) {
                if case .containerExited(name: "reader", let status) = event {
                    reader.markExited(status)
                    return status
                }
            }
            XCTFail("the reader's exit never came")
            return nil
        }

        var escaped = 0, saw = 0, refused = 0
        for iteration in 0..<iterations {
            do {
                if iteration == 0 { try pod.start(reader, sink: nil) } else { try pod.restart(reader, sink: nil) }
            } catch {
                if refused == 0 { print("first refusal: \(error)") }
                refused += 1 // the subPath was a symlink out of the volume at that instant
            }
            switch readerExit() {
            case .exited(code: 42)?: escaped += 1
            case .exited(code: 0)?: saw += 1
            default: break
            }
        }
        print("subPath race: \(iterations) starts, \(saw) saw the volume's directory, \(refused) refused, \(escaped) escapes")
        XCTAssertEqual(escaped, 0, "a container saw the host directory through a swapped subPath")
        XCTAssertGreaterThan(saw, 0, "some starts raced with the directory and mounted it")
        XCTAssertGreaterThan(refused, 0, "some starts raced with the symlink and were refused")
    }
}
