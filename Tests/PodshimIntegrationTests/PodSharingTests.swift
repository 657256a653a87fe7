import Foundation
import Glibc
import XCTest

/// What must show, 2: containers of a pod reach each other on localhost, share System V and POSIX
/// IPC and emptyDir volumes; the image stays untouched by what containers write.
final class PodSharingTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    func testLocalhostSysVPOSIXShmAndEmptyDirAreShared() throws {
        let server = """
            mkdir -p /tmp/www && echo served-over-localhost > /tmp/www/index.html
            httpd -f -p 8080 -h /tmp/www &
            probe sysv-write 4242 sysv-from-server
            probe posix-write /podshim-shm posix-from-server
            echo file-from-server > /shared/file
            touch /shared/ready
            until [ -e /shared/done ]; do sleep 0.05; done
            """
        let client = """
            until [ -e /shared/ready ]; do sleep 0.05; done
            for i in $(seq 100); do out=$(wget -qO- http://localhost:8080/ 2>/dev/null) && break; sleep 0.05; done
            echo "tcp=$out"
            echo "sysv=$(probe sysv-read 4242)"
            echo "posix=$(probe posix-read /podshim-shm)"
            echo "file=$(cat /shared/file)"
            touch /shared/done
            """
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: sharing }
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              volumes: [{ name: shared, emptyDir: {} }]
              containers:
              - name: server
                image: busybox
                command: [sh, -c, \(json(server))]
                volumeMounts: [{ name: shared, mountPath: /shared }]
              - name: client
                image: busybox
                command: [sh, -c, \(json(client))]
                volumeMounts: [{ name: shared, mountPath: /shared }]
            """)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "client"), [
            "tcp=served-over-localhost", "sysv=sysv-from-server", "posix=posix-from-server", "file=file-from-server",
        ])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testContainerWritesGoToItsOwnLayerNotTheImage() throws {
        let image = PodshimHarness.imageDir + "/busybox/rootfs"
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: layers }
            spec:
              restartPolicy: Never
              containers:
              - { name: writer, image: busybox, command: [sh, -c, "echo x > /etc/written && rm /bin/true && echo done"] }
              - { name: reader, image: busybox, command: [sh, -c, "sleep 0.3; test -e /etc/written && echo leaked || echo isolated"] }
            """)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "writer"), ["done"])
        XCTAssertEqual(run.lines(of: "reader"), ["isolated"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: image + "/etc/written"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: image + "/bin/true"))
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testHostPathVolumesReadOnlyAndSubPath() throws {
        let host = harness.base + "/host-volume"
        try FileManager.default.createDirectory(atPath: host + "/sub", withIntermediateDirectories: true)
        try "from-host".write(toFile: host + "/sub/input", atomically: false, encoding: .utf8)
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: hostpath }
            spec:
              restartPolicy: Never
              volumes: [{ name: h, hostPath: { path: \(host), type: Directory } }]
              containers:
              - name: c
                image: busybox
                command: [sh, -c, "cat /ro/input; echo; echo x > /ro/new 2>/dev/null && echo ro-writable || echo ro-refused; echo from-container > /rw/output"]
                volumeMounts:
                - { name: h, mountPath: /ro, subPath: sub, readOnly: true }
                - { name: h, mountPath: /rw }
            """)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "c"), ["from-host", "ro-refused"])
        XCTAssertEqual(try String(contentsOfFile: host + "/output", encoding: .utf8), "from-container\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: host + "/sub/new"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: host + "/sub/input"), "a hostPath outlives the pod")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testMemoryEmptyDirIsATmpfsOfItsSizeLimit() throws {
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: memvolume }
            spec:
              restartPolicy: Never
              volumes: [{ name: m, emptyDir: { medium: Memory, sizeLimit: 1Mi } }]
              containers:
              - name: c
                image: busybox
                command: [sh, -c, "df -k /m | awk 'NR==2 {print $1, $2}'; dd if=/dev/zero of=/m/f bs=1k count=2048 2>/dev/null || echo full"]
                volumeMounts: [{ name: m, mountPath: /m }]
            """)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "c"), ["tmpfs 1024", "full"])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testLogsAreWrittenInCRIFormat() throws {
        let uid = "logs-" + UUID().uuidString.prefix(8).lowercased()
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: logs, uid: \(uid) }
            spec:
              restartPolicy: Never
              containers:
              - { name: talk, image: busybox, command: [sh, -c, "echo out1; echo err1 >&2; printf tail"] }
            """)
        XCTAssertEqual(status, 0, run.stderr)
        let log = try String(contentsOfFile: harness.logDir + "/default_logs_\(uid)/talk/0.log", encoding: .utf8)
        let records = log.split(separator: "\n").map { line -> String in
            let fields = line.split(separator: " ", maxSplits: 1)
            XCTAssertTrue(fields[0].hasSuffix("Z") && fields[0].contains("T"), "timestamp: \(line)")
            return String(fields[1])
        }
        XCTAssertEqual(records.sorted(), ["stderr F err1", "stdout F out1", "stdout F tail"])
        XCTAssertEqual(run.lines(of: "talk"), ["out1", "tail"])
    }
}
