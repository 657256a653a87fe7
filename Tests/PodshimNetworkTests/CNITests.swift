import Foundation
import XCTest
@testable import PodshimNetwork
import PodshimSystem

/// The error a throwing expression throws, or a test failure.
func thrownError<T, E: Error>(
    _ body: () throws(E) -> T, file: StaticString = #filePath, line: UInt = #line
) -> E? {
    do {
        _ = try body()
        XCTFail("expected an error", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

final class CNIConfigurationTests: XCTestCase {
    func list(_ text: String, file: String = "/etc/cni/net.d/10-test.conflist") throws -> CNINetworkList {
        try CNINetworkList.parse(Array(text.utf8), file: file)
    }

    func testConflistKeepsPluginsAsWritten() throws {
        let parsed = try list("""
            {"cniVersion":"1.0.0","name":"net","disableCheck":true,"plugins":[
              {"type":"bridge","bridge":"b0","zzz":{"kept":[1,2]},"ipam":{"type":"host-local"}},
              {"type":"portmap","capabilities":{"portMappings":true}}]}
            """)
        XCTAssertEqual(parsed.name, "net")
        XCTAssertEqual(parsed.cniVersion, "1.0.0")
        XCTAssertEqual(parsed.types, ["bridge", "portmap"])
        XCTAssertTrue(parsed.disableCheck)
        XCTAssertEqual(parsed.plugins[0].text, #"{"type":"bridge","bridge":"b0","zzz":{"kept":[1,2]},"ipam":{"type":"host-local"}}"#)
    }

    func testSinglePluginConfIsWrapped() throws {
        let parsed = try list(#"{"cniVersion":"0.4.0","name":"one","type":"bridge"}"#, file: "/d/10.conf")
        XCTAssertEqual(parsed.types, ["bridge"])
        XCTAssertEqual(parsed.cniVersion, "0.4.0")
        XCTAssertEqual(parsed.document["plugins"]?.arrayValue?.count, 1)
    }

    func testErrorsNameFileAndField() {
        let cases: [(String, String)] = [
            ("{ nope", "not JSON"),
            (#"{"cniVersion":"1.0.0","plugins":[{"type":"x"}]}"#, "name: missing or empty"),
            (#"{"cniVersion":"1.0.0","name":"../x","plugins":[{"type":"x"}]}"#, "name: \"../x\" cannot be used in a file name"),
            (#"{"name":"n","plugins":[{"type":"x"}]}"#, "cniVersion: missing"),
            (#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#, "plugins: empty"),
            (#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"ok"},{"bridge":"b"}]}"#, "plugins[1].type: missing"),
            (#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}"#, "plugins[0].type: \"../../bin/sh\" is not a plugin name"),
        ]
        for (text, expected) in cases {
            let error = thrownError { () throws(PodshimError) in try CNINetworkList.parse(Array(text.utf8), file: "/d/x.conflist") }
            XCTAssertEqual(error?.subject, "/d/x.conflist", text)
            XCTAssertTrue(error?.description.contains(expected) == true, "\(text): \(String(describing: error))")
        }
    }

    func testFirstFileByNameIsTheNetworkAndChangesAreSeen() throws {
        let directory = NSTemporaryDirectory() + "/cni-conf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bin = NSTemporaryDirectory() + "/cni-bin-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: bin) }
        FileManager.default.createFile(atPath: bin + "/fake", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        let manager = CNIManager(options: .init(configuration: CNIConfigurationDirectory(directory: directory, binDirectories: [bin]),
                                                cacheDirectory: directory + "/cache", pinDirectory: directory + "/pins"))
        guard case .failure(let none) = manager.network() else { return XCTFail("a network without configuration") }
        XCTAssertTrue(none.description.contains("no network configuration"))
        try #"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"fake"}]}"#.write(toFile: directory + "/20-b.conflist", atomically: false, encoding: .utf8)
        try #"{"cniVersion":"1.0.0","name":"a","type":"fake"}"#.write(toFile: directory + "/10-a.conf", atomically: false, encoding: .utf8)
        try "not a config".write(toFile: directory + "/00-readme.txt", atomically: false, encoding: .utf8)
        XCTAssertEqual(try manager.network().get().name, "a")
        try #"{"cniVersion":"1.0.0","name":"a2","type":"missing"}"#.write(toFile: directory + "/10-a.conf", atomically: false, encoding: .utf8)
        guard case .failure(let missing) = manager.network() else { return XCTFail("a missing plugin is not ready") }
        XCTAssertTrue(missing.description.contains("plugin \"missing\" not found in \(bin)"), missing.description)
    }
}

final class CNIPluginConfigTests: XCTestCase {
    func testRuntimeConfigOnlyForDeclaredCapabilities() throws {
        let list = try CNINetworkList.parse(Array(#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true,"other":false}}]}"#.utf8), file: "f")
        let capabilities: [(key: String, value: JSONValue)] = [
            ("portMappings", .array([PortMapping(hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "").json])),
            ("cgroupPath", .string("/sys/fs/cgroup/pod")),
        ]
        let previous = JSONValue.object([("cniVersion", .string("1.0.0")), ("ips", .array([]))])
        let bridge = CNIManager.pluginConfig(list.plugins[0], list: list, previous: nil, capabilities: capabilities)
        XCTAssertEqual(bridge.text, #"{"type":"bridge","name":"n","cniVersion":"1.0.0"}"#)
        let portmap = CNIManager.pluginConfig(list.plugins[1], list: list, previous: previous, capabilities: capabilities)
        XCTAssertEqual(portmap.text, #"{"type":"portmap","name":"n","cniVersion":"1.0.0","prevResult":{"cniVersion":"1.0.0","ips":[]},"#
            + #""runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#)
    }

    func testPodIPsAreThoseOfEth0InThePodIPv4First() throws {
        let result = try JSONValue.parse(Array("""
            {"cniVersion":"1.0.0","interfaces":[{"name":"psh0","mac":"a"},{"name":"veth1","mac":"b"},{"name":"eth0","mac":"c","sandbox":"/run/netns/x"}],
             "ips":[{"interface":2,"address":"fd00::5/64"},{"interface":0,"address":"10.0.0.1/24"},{"interface":2,"address":"10.0.0.5/24","gateway":"10.0.0.1"}]}
            """.utf8))
        XCTAssertEqual(CNIManager.ips(in: result, ifName: "eth0"), ["10.0.0.5", "fd00::5"])
        let old = try JSONValue.parse(Array(#"{"ip4":{"ip":"10.1.0.3/16"}}"#.utf8))
        XCTAssertEqual(CNIManager.ips(in: old, ifName: "eth0"), ["10.1.0.3"])
    }

    func testHostPortClashes() {
        let any = PortMapping(hostPort: 80, containerPort: 8080, protocol: "tcp", hostIP: "")
        XCTAssertTrue(any.clashes(with: PortMapping(hostPort: 80, containerPort: 1, protocol: "tcp", hostIP: "127.0.0.1")))
        XCTAssertFalse(any.clashes(with: PortMapping(hostPort: 80, containerPort: 1, protocol: "udp", hostIP: "")))
        XCTAssertFalse(any.clashes(with: PortMapping(hostPort: 81, containerPort: 1, protocol: "tcp", hostIP: "")))
        let one = PortMapping(hostPort: 80, containerPort: 1, protocol: "tcp", hostIP: "10.0.0.1")
        XCTAssertFalse(one.clashes(with: PortMapping(hostPort: 80, containerPort: 1, protocol: "tcp", hostIP: "10.0.0.2")))
    }
}

/// Plugins are real executables here (shell scripts), run the way libcni runs them.
final class CNIInvocationTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "/cni-invoke-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func plugin(_ name: String, _ script: String) -> String {
        let path = directory + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(("#!/bin/sh\n" + script).utf8), attributes: [.posixPermissions: 0o755])
        return path
    }

    func invocation(_ command: CNIInvocation.Command = .add) -> CNIInvocation {
        CNIInvocation(command: command, containerID: "abc123", netns: "/run/x", ifName: "eth0",
                      args: [("IgnoreUnknown", "1"), ("K8S_POD_NAME", "web")], pluginPath: [directory, "/usr/lib/cni"])
    }

    func testEnvironmentAndStdinReachThePlugin() throws {
        let path = plugin("echo", """
            cat > \(directory)/stdin
            env | grep ^CNI_ | sort > \(directory)/env
            echo '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}'
            """)
        let result = try invocation().run(plugin: path, config: .object([("name", .string("n"))]), timeoutSeconds: 10)
        XCTAssertEqual(result?["ips"]?.arrayValue?.first?["address"]?.stringValue, "10.9.0.2/24")
        XCTAssertEqual(try String(contentsOfFile: directory + "/stdin", encoding: .utf8), #"{"name":"n"}"#)
        XCTAssertEqual(try String(contentsOfFile: directory + "/env", encoding: .utf8), """
            CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web
            CNI_COMMAND=ADD
            CNI_CONTAINERID=abc123
            CNI_IFNAME=eth0
            CNI_NETNS=/run/x
            CNI_PATH=\(directory):/usr/lib/cni

            """)
    }

    func testThePluginsErrorIsReported() {
        let path = plugin("fail", """
            echo '{"cniVersion":"1.0.0","code":7,"msg":"invalid config","details":"no bridge"}'
            echo 'some log' >&2
            exit 1
            """)
        let error = thrownError { () throws(PodshimError) in try invocation().run(plugin: path, config: .object([]), timeoutSeconds: 10) }
        XCTAssertEqual(error?.code, .failedPrecondition)
        XCTAssertEqual(error?.message, "invalid config (no bridge) [CNI error code 7]")
        let stderrOnly = plugin("crash", "echo 'panic: boom' >&2\nexit 2\n")
        let crash = thrownError { () throws(PodshimError) in try invocation().run(plugin: stderrOnly, config: .object([]), timeoutSeconds: 10) }
        XCTAssertTrue(crash?.message?.contains("panic: boom") == true, String(describing: crash))
        let again = plugin("again", #"echo '{"code":11,"msg":"busy"}'; exit 1"#)
        XCTAssertEqual(thrownError { () throws(PodshimError) in try invocation().run(plugin: again, config: .object([]), timeoutSeconds: 10) }?.code,
                       .unavailable)
    }

    func testAHangingPluginAndWhatItStartedAreKilledAtTheTimeout() throws {
        let path = plugin("hang", "sleep 300 &\necho $! > \(directory)/child\nwait\n")
        let start = Date()
        let error = thrownError { () throws(PodshimError) in try invocation().run(plugin: path, config: .object([]), timeoutSeconds: 0.5) }
        XCTAssertEqual(error?.code, .deadlineExceeded)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        let child = Int32(try String(contentsOfFile: directory + "/child", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(child, 0)
        // The plugin's own child (its process group) is gone too.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = kill(child, 0) != 0 || (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?.contains(") Z ") == true
            if !gone { usleep(20_000) }
        }
        XCTAssertTrue(gone, "the plugin's child \(child) still runs")
    }

    func testNotJSONOnSuccessIsAnError() {
        let path = plugin("garbage", "echo hello\n")
        let error = thrownError { () throws(PodshimError) in try invocation().run(plugin: path, config: .object([]), timeoutSeconds: 10) }
        XCTAssertTrue(error?.message?.contains("not JSON") == true, String(describing: error))
    }
}
