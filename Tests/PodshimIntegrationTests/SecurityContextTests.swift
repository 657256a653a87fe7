import Foundation
import Glibc
import XCTest

/// Containers are confined by default and privileged only when asked, on the real kernel.
final class SecurityContextTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    /// containerd's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    /// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    static let defaultCapabilities = "00000000a80425fb"

    /// Every capability up to cap_last_cap that this (root) process holds: all a child can get.
    static var fullCapabilities: String {
        let last = Int((try? String(contentsOfFile: "/proc/sys/kernel/cap_last_cap", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "40") ?? 40
        let all = last >= 63 ? UInt64.max : (UInt64(1) << UInt64(last + 1)) - 1
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let held = status.split(separator: "\n").first { $0.hasPrefix("CapPrm:") }
            .flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) } ?? all
        let hex = String(all & held, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Runs each `name=command` check in a container and returns name → "ok"/"fail" plus the
    /// `status` lines (`CapEff`, `Seccomp`, `NoNewPrivs`, `uid`).
    private func check(_ checks: [(String, String)], securityContext: String = "{}", podSecurityContext: String = "{}",
                       extraContainers: String = "") throws -> (values: [String: String], run: PodshimHarness.Run) {
        let script = (["grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status | tr -d ' \\t' | tr ':' '='", "echo uid=$(id -u)"]
            + checks.map { "if (\($0.1)) >/dev/null 2>&1; then echo \($0.0)=ok; else echo \($0.0)=fail; fi" })
            .joined(separator: "\n")
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: security }
            spec:
              restartPolicy: Never
              securityContext: \(podSecurityContext)
              containers:
              - name: c
                image: busybox
                command: [sh, -c, \(json(script))]
                securityContext: \(securityContext)
            \(extraContainers)
            """)
        XCTAssertEqual(status, 0, run.stderr)
        let values = Dictionary(run.lines(of: "c").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        return (values, run)
    }

    func testDefaultContainerIsConfined() throws {
        let (values, run) = try check([
            ("mount", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"),
            ("iplink", "ip link add d0 type bridge"),
            ("module", "probe init-module"),
            ("userns", "unshare -U true"),
            ("hostname", "hostname foo"),
            ("procsys", "echo 1 > /proc/sys/vm/drop_caches"),
            ("kcore", "[ $(head -c 16 /proc/kcore | wc -c) -gt 0 ]"),
            ("chown", "touch /tmp/f && chown 1000:1000 /tmp/f"),
            ("port80", "httpd -p 80"),
            ("sysfs", "touch /sys/kernel/podshim"),
        ], extraContainers: """
              - { name: other, image: busybox, command: [sh, -c, "sleep 1; hostname"] }
            """)
        XCTAssertEqual(values["CapEff"], Self.defaultCapabilities)
        XCTAssertEqual(values["Seccomp"], "2", "RuntimeDefault seccomp is on by default")
        XCTAssertEqual(values["NoNewPrivs"], "0", "allowPrivilegeEscalation defaults to true")
        XCTAssertEqual(values["uid"], "0")
        for denied in ["mount", "iplink", "module", "userns", "hostname", "procsys", "kcore", "sysfs"] {
            XCTAssertEqual(values[denied], "fail", "\(denied) must be denied")
        }
        XCTAssertEqual(values["chown"], "ok")
        XCTAssertEqual(values["port80"], "ok")
        XCTAssertEqual(run.lines(of: "other"), ["security"], "one container must not rename the pod's UTS namespace")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testNoNewPrivsWhenPrivilegeEscalationIsNotAllowed() throws {
        let (values, _) = try check([], securityContext: "{ allowPrivilegeEscalation: false }")
        XCTAssertEqual(values["NoNewPrivs"], "1")
        XCTAssertEqual(values["Seccomp"], "2")
        XCTAssertEqual(values["CapEff"], Self.defaultCapabilities)
    }

    func testCapabilitiesAddAndDrop() throws {
        let (values, _) = try check([("mount", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"), ("chown", "touch /tmp/f && chown 1:1 /tmp/f")],
                                    securityContext: "{ capabilities: { add: [SYS_ADMIN], drop: [CAP_CHOWN] } }")
        // CHOWN (bit 0) dropped, SYS_ADMIN (bit 21) added; RuntimeDefault lets SYS_ADMIN mount.
        XCTAssertEqual(values["CapEff"], "00000000a82425fa")
        XCTAssertEqual(values["mount"], "ok")
        XCTAssertEqual(values["chown"], "fail")
    }

    func testUnconfinedSeccomp() throws {
        let (values, _) = try check([], securityContext: "{ seccompProfile: { type: Unconfined } }")
        XCTAssertEqual(values["Seccomp"], "0")
    }

    func testPrivilegedContainerHasEverything() throws {
        let hostDevices = try FileManager.default.contentsOfDirectory(atPath: "/dev").filter { name in
            var info = stat()
            return lstat("/dev/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFBLK
        }
        let device = try XCTUnwrap(hostDevices.sorted().first, "the host has no block device to look for")
        let (values, run) = try check([
            // This kernel may lack the dummy driver; a bridge is a link of the pod's netns all the same.
            ("iplink", "ip link add d0 type dummy 2>/dev/null || ip link add d0 type bridge; ip link show d0"),
            ("mount", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"),
            ("device", "[ -b /dev/\(device) ]"),
            ("sysfs", "[ -w /sys/kernel ] && mount | grep -q 'sysfs on /sys type sysfs (rw'"),
        ], securityContext: "{ privileged: true }")
        XCTAssertEqual(values["CapEff"], Self.fullCapabilities)
        XCTAssertEqual(values["Seccomp"], "0")
        XCTAssertEqual(values["iplink"], "ok")
        XCTAssertEqual(values["mount"], "ok")
        XCTAssertEqual(values["device"], "ok", "/dev/\(device) of the host must be visible")
        XCTAssertEqual(values["sysfs"], "ok")
        XCTAssertTrue(run.stderr.contains("privileged sandbox"), run.stderr)
        var info = stat()
        XCTAssertNotEqual(stat("/sys/class/net/d0", &info), 0, "the host must not see d0")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testRunAsUserHasNoEffectiveCapabilities() throws {
        let (values, _) = try check([("id", "[ \"$(id -g)\" = 3000 ] && id -G | grep -qw 4000")],
                                    securityContext: "{ runAsUser: 1000, runAsGroup: 3000 }",
                                    podSecurityContext: "{ supplementalGroups: [4000] }")
        XCTAssertEqual(values["uid"], "1000")
        XCTAssertEqual(values["CapEff"], "0000000000000000")
        XCTAssertEqual(values["id"], "ok")
    }

    func testReadOnlyRootFilesystem() throws {
        let (values, _) = try check([("write", "touch /etc/podshim"), ("tmpwrite", "touch /dev/shm/x")],
                                    securityContext: "{ readOnlyRootFilesystem: true }")
        XCTAssertEqual(values["write"], "fail")
        XCTAssertEqual(values["tmpwrite"], "ok", "mounts on top of the rootfs stay writable")
    }

    func testBadSecurityContextsAreRefusedBeforeAnythingStarts() throws {
        let cases: [(String, String)] = [
            ("{ capabilities: { add: [NOT_A_CAP] } }",
             "spec.containers[0].securityContext.capabilities.add[0]: unknown capability \"NOT_A_CAP\""),
            ("{ seccompProfile: { type: Localhost, localhostProfile: /does/not/exist.json } }",
             "spec.containers[0].securityContext.seccompProfile: seccomp profile /does/not/exist.json: cannot read: ENOENT"),
            ("{ runAsNonRoot: true }",
             "spec.containers[0].securityContext.runAsNonRoot: the container would run as root"),
        ]
        for (context, expected) in cases {
            let (status, run) = try harness.run("""
                apiVersion: v1
                kind: Pod
                metadata: { name: refused }
                spec:
                  containers: [{ name: c, image: busybox, command: ["true"], securityContext: \(context) }]
                """)
            XCTAssertEqual(status, 2, expected)
            XCTAssertTrue(run.stderr.contains(expected), "expected \(expected) in: \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: harness.stateDir), "nothing may start: \(expected)")
        }
    }

    func testLocalhostProfileIsEnforced() throws {
        let profile = harness.base + "/deny-mkdir.json"
        try FileManager.default.createDirectory(atPath: harness.base, withIntermediateDirectories: true)
        try """
            { "defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [ { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 } ] }
            """.write(toFile: profile, atomically: false, encoding: .utf8)
        let (values, _) = try check([("mkdir", "mkdir /tmp/d"), ("touch", "touch /tmp/f")],
                                    securityContext: "{ seccompProfile: { type: Localhost, localhostProfile: \(profile) } }")
        XCTAssertEqual(values["Seccomp"], "2")
        XCTAssertEqual(values["mkdir"], "fail")
        XCTAssertEqual(values["touch"], "ok")
    }
}
