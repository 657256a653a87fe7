import Foundation
import PodshimRuntime
import Testing
@testable import podshim

@Suite struct ServeConfigFileTests {
    private func parse(_ text: String) throws(ServeConfigFile.Error) -> ServeConfigFile.Values {
        try ServeConfigFile.parse(text: text, path: "/etc/podshim/podshim.conf")
    }

    private func error(_ text: String) -> ServeConfigFile.Error? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func everyKey() throws {
        let values = try parse("""
            # podshim serve
            socket = /run/k8s/podshim.sock
            socket-group = kube
            state-dir = /run/ps
            root = /srv/podshim
            image-dir = /srv/images
            log-dir = /var/log/pods
            pause-binary = /opt/podshim/pause
            cgroup-root = /sys/fs/cgroup/k8s
            cgroup-driver = systemd
            require-cgroups = true
            pod-pids-limit = 4096
            """)
        #expect(values == ServeConfigFile.Values(
            socket: "/run/k8s/podshim.sock", socketGroup: "kube", stateDir: "/run/ps", root: "/srv/podshim",
            imageDir: "/srv/images", logDir: "/var/log/pods", pauseBinary: "/opt/podshim/pause",
            cgroupRoot: "/sys/fs/cgroup/k8s", cgroupDriver: .systemd, requireCgroups: true, podPidsLimit: 4096))
    }

    @Test func commentsBlanksAndQuotes() throws {
        let values = try parse("""

              # indented comment
            #socket = /ignored
            cgroup-driver=cgroupfs   # trailing comment
            \tstate-dir =\t/run/a#b\r
            log-dir = "/var/log/with #hash"  # comment
            require-cgroups = false
            """)
        #expect(values == ServeConfigFile.Values(
            stateDir: "/run/a#b", logDir: "/var/log/with #hash", cgroupDriver: .cgroupfs, requireCgroups: false))
        #expect(try parse("") == ServeConfigFile.Values())
        #expect(try parse("# only comments\n\n") == ServeConfigFile.Values())
    }

    @Test func errorsNameFileLineAndKey() {
        #expect(error("\n\ncolour = blue")?.description
            == "/etc/podshim/podshim.conf:3: colour: unknown key (known: socket, socket-group, state-dir, root, image-dir, log-dir, pause-binary, cgroup-root, cgroup-driver, require-cgroups, pod-pids-limit, network, cni-conf-dir, cni-bin-dir, cni-timeout, stream-address, stream-port, stream-idle-timeout, stream-tls-cert, stream-tls-key, registry-config)")
        #expect(error("# x\ncgroup-driver = cgroup")?.description
            == "/etc/podshim/podshim.conf:2: cgroup-driver: \"cgroup\" is not one of cgroupfs, systemd")
        #expect(error("require-cgroups = yes")?.description
            == "/etc/podshim/podshim.conf:1: require-cgroups: \"yes\" is not true or false")
        #expect(error("pod-pids-limit = 0")?.description
            == "/etc/podshim/podshim.conf:1: pod-pids-limit: \"0\" is not a whole number of at least 1")
        #expect(error("pod-pids-limit = 10k")?.key == "pod-pids-limit")
        #expect(error("root = var/lib/podshim")?.description
            == "/etc/podshim/podshim.conf:1: root: \"var/lib/podshim\" is not an absolute path")
        #expect(error("socket =")?.description
            == "/etc/podshim/podshim.conf:1: socket: the value is empty (comment the line out to use the default)")
        #expect(error("root = /a\nroot = /b")?.description
            == "/etc/podshim/podshim.conf:2: root: given twice (first on line 1)")
        #expect(error("state-dir /run/podshim")?.description
            == "/etc/podshim/podshim.conf:1: expected `key = value`, found \"state-dir /run/podshim\"")
        #expect(error("= /run")?.line == 1)
        #expect(error("root = /a\r\ncolour = x")?.line == 2)
        #expect(error("log-dir = \"/var/log")?.description
            == "/etc/podshim/podshim.conf:1: log-dir: the closing quote is missing")
        #expect(error("socket-group = kube admins")?.key == "socket-group")
        // Keys are the flag names, not Swift's or the kubelet's spellings.
        #expect(error("state_dir = /run/x")?.key == "state_dir")
        #expect(error("cgroupDriver = systemd")?.line == 1)
    }

    @Test func loadingFiles() throws {
        let directory = NSTemporaryDirectory() + "podshim-conf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let missing = directory + "/missing.conf"
        #expect(try ServeConfigFile.load(path: missing, required: false) == ServeConfigFile.Values())
        #expect(throws: ServeConfigFile.Error(path: missing, line: 0, key: nil, message: "No such file or directory")) {
            try ServeConfigFile.load(path: missing, required: true)
        }

        let path = directory + "/podshim.conf"
        try "cgroup-driver = systemd\npod-pids-limit = -1\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: ServeConfigFile.Error(path: path, line: 2, key: "pod-pids-limit", message: "\"-1\" is not a whole number of at least 1")) {
            try ServeConfigFile.load(path: path, required: false)
        }
        try "cgroup-driver = systemd\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try ServeConfigFile.load(path: path, required: true) == ServeConfigFile.Values(cgroupDriver: .systemd))
    }

    @Test func commandLineWinsOverFileOverDefaults() throws {
        let file = try parse("""
            state-dir = /run/from-file
            log-dir = /var/log/from-file
            require-cgroups = true
            pod-pids-limit = 100
            cgroup-root = /sys/fs/cgroup/file
            """)
        let host = try HostOptions.parse(["--state-dir", "/run/from-flag", "--no-require-cgroups", "--pod-pids-limit", "7"])
        let configuration = host.runtimeConfiguration(file: file)
        #expect(configuration.stateDirectory == "/run/from-flag")
        #expect(configuration.logDirectory == "/var/log/from-file")
        #expect(configuration.requireCgroups == false)
        #expect(configuration.podPidsLimit == 7)
        #expect(configuration.cgroupRoot == "/sys/fs/cgroup/file")
        #expect(configuration.rootDirectory == "/var/lib/podshim")
        #expect(configuration.imageDirectory == "/var/lib/podshim/images")

        let fileOnly = try HostOptions.parse([]).runtimeConfiguration(file: file)
        #expect(fileOnly.stateDirectory == "/run/from-file")
        #expect(fileOnly.requireCgroups == true)
        #expect(fileOnly.podPidsLimit == 100)
    }

    @Test func runKeepsItsDefaults() throws {
        let configuration = try HostOptions.parse([]).runtimeConfiguration
        #expect(configuration.stateDirectory == "/run/podshim")
        #expect(configuration.rootDirectory == "/var/lib/podshim")
        #expect(configuration.imageDirectory == "/var/lib/podshim/images")
        #expect(configuration.logDirectory == "/var/log/podshim/pods")
        #expect(configuration.cgroupRoot == nil)
        #expect(configuration.requireCgroups == false)
        #expect(configuration.podPidsLimit == nil)
        #expect(configuration.cgroupDriver == .cgroupfs)
        #expect(try HostOptions.parse(["--require-cgroups"]).runtimeConfiguration.requireCgroups == true)
    }

    @Test func serveFlags() throws {
        let serve = try Serve.parse(["--config", "/tmp/x.conf", "--cgroup-driver", "systemd", "--socket", "/run/s.sock"])
        #expect(serve.config == "/tmp/x.conf")
        #expect(serve.cgroupDriver == .systemd)
        #expect(serve.socket == "/run/s.sock")
        #expect(try Serve.parse([]).cgroupDriver == nil)
        #expect(throws: (any Error).self) { try Serve.parse(["--cgroup-driver", "cgroup"]) }
    }
}
