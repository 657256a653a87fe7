import PodshimSecurity
import PodshimSystem
import XCTest

final class SeccompProfileTests: XCTestCase {
    var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// A small profile in Docker's format, with the features Docker's default profile uses.
    static let dockerStyle = #"""
    {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
        ],
        "syscalls": [
            {"names": ["read", "write", "exit", "exit_group", "no_such_syscall"], "action": "SCMP_ACT_ALLOW", "comment": "basics"},
            {"name": "openat", "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone", "mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.0"}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getpid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
            {"names": ["gettid"], "action": "SCMP_ACT_TRAP"},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
            {"names": ["swapon"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["chdir"], "action": "SCMP_ACT_ERRNO"}
        ]
    }
    """#

    func write(_ json: String) throws -> String { try scratch.write("profile.json", json) }

    func expectError(_ json: String, _ expected: (String) -> String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(json)
        let error = thrownError({ () throws(SeccompError) in
            try Seccomp.localhost(profileAt: path, capabilities: Capabilities.defaultSet)
        }, file: file, line: line)
        XCTAssertEqual(error?.description, expected(path), file: file, line: line)
    }

    // MARK: Parsing

    func testParsesDockerFormat() throws {
        let document = try SeccompProfileDocument.parse(Array(Self.dockerStyle.utf8), source: "p.json")
        XCTAssertEqual(document.defaultAction, .errno)
        XCTAssertEqual(document.defaultErrnoRet, 1)
        XCTAssertEqual(document.archMap.count, 3)
        XCTAssertEqual(document.archMap[0], SeccompArchitectureEntry(architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]))
        XCTAssertEqual(document.archMap[2].subArchitectures, [])
        XCTAssertEqual(document.syscalls.count, 16)
        XCTAssertEqual(document.syscalls[1].names, ["openat"])
        XCTAssertEqual(
            document.syscalls[3],
            SeccompSyscallRule(
                names: ["clone"], action: .allow,
                args: [SeccompArgument(index: 0, value: 0x7E02_0000, valueTwo: 0, op: .maskedEqual)],
                excludes: SeccompRuleCondition(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"])))
        XCTAssertEqual(document.syscalls[5].errnoRet, 38)
        XCTAssertEqual(document.syscalls[6].includes?.minKernel, SeccompKernelVersion(4, 8))
        XCTAssertEqual(document.syscalls[10].action, .trace)
    }

    func testParsesFullRangeArgumentValues() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 5, "value": 18446744073709551615, "valueTwo": 9007199254740993, "op": "SCMP_CMP_GE"}]}]}"#
        let document = try SeccompProfileDocument.parse(Array(json.utf8), source: "p.json")
        XCTAssertEqual(document.syscalls[0].args, [SeccompArgument(index: 5, value: .max, valueTwo: 9_007_199_254_740_993, op: .greaterOrEqual)])
    }

    // MARK: Compiling

    func testDockerStyleProfileCompiles() throws {
        let path = try write(Self.dockerStyle)
        let filter = try Seccomp.localhost(profileAt: path, capabilities: Capabilities.defaultSet)
        XCTAssertFalse(filter.bpf.isEmpty)
        XCTAssertEqual(filter.bpf.count % 8, 0)

        let bpf = BPFEvaluator(filter)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.read), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: 257 /* openat */), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.socket, args: [2]), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.socket, args: [40]), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.clone, args: [17]), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.clone, args: [0x1000_0011]), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.mount), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.clone3), SeccompReturn.enosys)
        XCTAssertEqual(try bpf.run(nr: 101 /* ptrace: minKernel 4.8 */), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: 312 /* kcmp: minKernel 99.0 */), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: 158 /* arch_prctl */), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.kexecLoad), SeccompReturn.killProcess)
        XCTAssertEqual(try bpf.run(nr: 39 /* getpid */), 0x7FF0_0007)  // TRACE(7)
        XCTAssertEqual(try bpf.run(nr: 110 /* getppid */), 0x7FFC_0000)  // LOG
        XCTAssertEqual(try bpf.run(nr: 186 /* gettid */), 0x0003_0000)  // TRAP
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.reboot), SeccompReturn.killThread)
        XCTAssertEqual(try bpf.run(nr: 167 /* swapon */), SeccompReturn.killThread)
        XCTAssertEqual(try bpf.run(nr: 80 /* chdir: ERRNO without errnoRet is EPERM */), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: 500 /* newer than the profile */), SeccompReturn.enosys)

        var caps = Capabilities.defaultSet
        caps.insert(21)
        let admin = BPFEvaluator(try Seccomp.localhost(profileAt: path, capabilities: caps))
        XCTAssertEqual(try admin.run(nr: SyscallNumber.mount), SeccompReturn.allow)
        XCTAssertEqual(try admin.run(nr: SyscallNumber.clone, args: [0x1000_0011]), SeccompReturn.allow)
        // With CAP_SYS_ADMIN no remaining rule names clone3, and it is newer than every one that
        // does apply: ENOSYS from the stub (runc computes the last syscall after the same filtering).
        XCTAssertEqual(try admin.run(nr: SyscallNumber.clone3), SeccompReturn.enosys)
    }

    func testUnknownSyscallNameIsSkipped() throws {
        func compile(_ names: String) throws -> SeccompFilter {
            let json = #"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [\#(names)], "action": "SCMP_ACT_ALLOW"}]}"#
            return try Seccomp.compile(
                try SeccompProfileDocument.parse(Array(json.utf8), source: "inline"), capabilities: .empty)
        }
        let with = try compile(#""read", "no_such_syscall", "write""#)
        let without = try compile(#""read", "write""#)
        XCTAssertEqual(with, without)
    }

    func testRuleWithTheDefaultActionIsDropped() throws {
        let withRedundant = SeccompProfileDocument(defaultAction: .errno, syscalls: [
            SeccompSyscallRule(names: ["mount"], action: .allow),
            SeccompSyscallRule(names: ["chdir"], action: .errno, errnoRet: 1),
        ])
        let plain = SeccompProfileDocument(defaultAction: .errno, syscalls: [SeccompSyscallRule(names: ["mount"], action: .allow)])
        XCTAssertEqual(try Seccomp.compile(withRedundant, capabilities: .empty), try Seccomp.compile(plain, capabilities: .empty))
    }

    func testSeveralComparisonsOnOneArgumentMatchAny() throws {
        let document = SeccompProfileDocument(defaultAction: .errno, syscalls: [
            SeccompSyscallRule(names: ["personality"], action: .allow, args: [
                SeccompArgument(index: 0, value: 0, op: .equal),
                SeccompArgument(index: 0, value: 8, op: .equal),
            ]),
        ])
        let bpf = BPFEvaluator(try Seccomp.compile(document, capabilities: .empty))
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.personality, args: [0]), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.personality, args: [8]), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.personality, args: [9]), SeccompReturn.eperm)
    }

    func testComparisonsOnDifferentArgumentsMatchAll() throws {
        let document = SeccompProfileDocument(defaultAction: .errno, syscalls: [
            SeccompSyscallRule(names: ["socket"], action: .allow, args: [
                SeccompArgument(index: 0, value: 2, op: .equal),
                SeccompArgument(index: 1, value: 0xF, valueTwo: 1, op: .maskedEqual),
            ]),
        ])
        let bpf = BPFEvaluator(try Seccomp.compile(document, capabilities: .empty))
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.socket, args: [2, 1 | 0x80000]), SeccompReturn.allow)  // SOCK_STREAM|SOCK_CLOEXEC
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.socket, args: [2, 2]), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.socket, args: [10, 1]), SeccompReturn.eperm)
    }

    func testAllowByDefaultHasNoENOSYSStub() throws {
        let document = SeccompProfileDocument(defaultAction: .allow, syscalls: [
            SeccompSyscallRule(names: ["mount"], action: .errno, errnoRet: 1),
        ])
        let filter = try Seccomp.compile(document, capabilities: .empty)
        let bpf = BPFEvaluator(filter)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.mount), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: 1000), SeccompReturn.allow)
        // libseccomp's program starts by loading the architecture; so does the stub when present.
        XCTAssertEqual(filter.instructions.first, BPFInstruction(code: 0x20, k: 4))
    }

    func testENOSYSStubLeadsTheProgram() throws {
        let document = SeccompProfileDocument(defaultAction: .killProcess, syscalls: [
            SeccompSyscallRule(names: ["read", "write", "exit_group"], action: .allow),
        ])
        let filter = try Seccomp.compile(document, capabilities: .empty)
        XCTAssertEqual(Array(filter.instructions.prefix(6)), [
            BPFInstruction(code: 0x20, k: 4),
            BPFInstruction(code: 0x15, jt: 0, jf: 4, k: auditArchX86_64),
            BPFInstruction(code: 0x20, k: 0),
            BPFInstruction(code: 0x45, jt: 2, jf: 0, k: 0x4000_0000),
            BPFInstruction(code: 0x25, jt: 0, jf: 1, k: 231),  // exit_group, the profile's last
            BPFInstruction(code: 0x06, k: SeccompReturn.enosys),
        ])
        let bpf = BPFEvaluator(filter)
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.read), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: 100), SeccompReturn.killProcess)
        XCTAssertEqual(try bpf.run(nr: 232), SeccompReturn.enosys)
    }

    func testDefaultErrnoENOSYSHasNoStub() throws {
        func compile(defaultErrno: UInt16) throws -> SeccompFilter {
            try Seccomp.compile(SeccompProfileDocument(defaultAction: .errno, defaultErrnoRet: defaultErrno, syscalls: [
                SeccompSyscallRule(names: ["write"], action: .allow),
            ]), capabilities: .empty)
        }
        let enosys = try compile(defaultErrno: 38)
        let eperm = try compile(defaultErrno: 1)
        XCTAssertEqual(eperm.instructionCount, enosys.instructionCount + 6)
        XCTAssertEqual(try BPFEvaluator(enosys).run(nr: 1000), SeccompReturn.enosys)
        XCTAssertEqual(try BPFEvaluator(enosys).run(nr: SyscallNumber.read), SeccompReturn.enosys)
        XCTAssertEqual(try BPFEvaluator(eperm).run(nr: SyscallNumber.read), SeccompReturn.eperm)
        XCTAssertEqual(try BPFEvaluator(eperm).run(nr: 2), SeccompReturn.enosys)
    }

    func testSyscallsNewerThanLibseccompAreCompiledByNumber() throws {
        let document = SeccompProfileDocument(defaultAction: .errno, syscalls: [
            SeccompSyscallRule(names: ["read", "mseal", "removexattrat"], action: .allow),
        ])
        let bpf = BPFEvaluator(try Seccomp.compile(document, capabilities: .empty))
        XCTAssertEqual(try bpf.run(nr: SyscallNumber.mseal), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: 466), SeccompReturn.allow)
        XCTAssertEqual(try bpf.run(nr: 465), SeccompReturn.eperm)
        XCTAssertEqual(try bpf.run(nr: 467), SeccompReturn.enosys)
    }

    // MARK: Errors

    func testMissingFile() {
        let path = scratch.path + "/absent.json"
        let error = thrownError { () throws(SeccompError) in
            try Seccomp.localhost(profileAt: path, capabilities: .empty)
        }
        XCTAssertEqual(error?.description, "seccomp profile \(path): cannot read: ENOENT")
        XCTAssertEqual(error?.kind, .unreadable(.noSuchFileOrDirectory))
    }

    func testDirectoryIsNotAProfile() {
        let error = thrownError { () throws(SeccompError) in
            try Seccomp.localhost(profileAt: scratch.path, capabilities: .empty)
        }
        XCTAssertEqual(error?.description, "seccomp profile \(scratch.path): cannot read: EISDIR")
    }

    func testMalformedJSON() throws {
        try expectError("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n") {
            "seccomp profile \($0): not valid JSON (unexpected end of input at line 4, column 1)"
        }
        try expectError(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [}]"#) {
            "seccomp profile \($0): not valid JSON (unexpected character '}' at line 1, column 50)"
        }
        try expectError(#"{"defaultAction": "SCMP_ACT_ERRNO"} x"#) {
            "seccomp profile \($0): not valid JSON (unexpected character 'x' after the JSON value at line 1, column 37)"
        }
        try expectError("") { "seccomp profile \($0): not valid JSON (unexpected end of input at line 1, column 1)" }
    }

    func testUnknownAction() throws {
        try expectError(#"""
        {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["open"], "action": "SCMP_ACT_FOO"}
        ]}
        """#) { "seccomp profile \($0): syscalls[3].action: unknown action \"SCMP_ACT_FOO\"" }
        try expectError(#"{"defaultAction": "SCMP_ACT_NONE"}"#) {
            "seccomp profile \($0): defaultAction: unknown action \"SCMP_ACT_NONE\""
        }
        try expectError(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#) {
            "seccomp profile \($0): syscalls[0].action: unsupported action \"SCMP_ACT_NOTIFY\""
        }
    }

    func testUnknownOperator() throws {
        try expectError(#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}"#) {
            "seccomp profile \($0): syscalls[0].args[1].op: unknown operator \"SCMP_CMP_ABOUT\""
        }
    }

    func testStructuralErrorsNameTheirLocation() throws {
        let cases: [(String, String)] = [
            (#"[]"#, "expected a JSON object, found an array"),
            (#"{}"#, "defaultAction: required"),
            (#"{"defaultAction": 1}"#, "defaultAction: expected a string, found a number"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}"#, "syscalls: expected an array, found an object"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names: required"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}"#, "syscalls[0].action: required"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
             #"syscalls[0]: both "name" and "names" are given; use one"#),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", 3], "action": "SCMP_ACT_ALLOW"}]}"#,
             "syscalls[0].names[1]: expected a string, found a number"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [""], "action": "SCMP_ACT_ALLOW"}]}"#,
             "syscalls[0].names[0]: empty syscall name"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
             "syscalls[0].args[0].index: expected 0 to 5, found 6"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
             "syscalls[0].args[0].index: required"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}"#,
             "syscalls[0].args[0].value: expected a non-negative integer, found -1"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]}]}"#,
             "syscalls[0].args[0].value: expected a non-negative integer, found 1.5"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 18446744073709551616, "op": "SCMP_CMP_EQ"}]}]}"#,
             "syscalls[0].args[0].value: expected an integer no larger than 18446744073709551615, found 18446744073709551616"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}"#, "defaultErrnoRet: expected 0 to 65535, found 65536"),
            (#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#,
             "defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a value, not SCMP_ACT_ALLOW"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}"#,
             "syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a value, not SCMP_ACT_KILL"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
             #"syscalls[0].includes.minKernel: invalid kernel version "4", expected "<kernel>.<major>""#),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": "CAP_SYS_ADMIN"}}]}"#,
             "syscalls[0].excludes.caps: expected an array, found a string"),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
             #"both "architectures" and "archMap" are given; use one"#),
            (#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"subArchitectures": []}]}"#, "archMap[0].architecture: required"),
        ]
        for (json, message) in cases {
            try expectError(json) { "seccomp profile \($0): \(message)" }
        }
    }

    func testNullCountsAsAbsentAndUnknownKeysAreIgnored() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": null, "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/x", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": null, "errnoRet": null, "comment": "c", "includes": {}}]}"#
        let document = try SeccompProfileDocument.parse(Array(json.utf8), source: "p")
        XCTAssertEqual(document, SeccompProfileDocument(
            defaultAction: .errno, flags: ["SECCOMP_FILTER_FLAG_LOG"],
            syscalls: [SeccompSyscallRule(names: ["read"], action: .allow, includes: SeccompRuleCondition())]))
    }

    func testArchitecturesListIsAcceptedAndOnlyNativeCompiled() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#
        let filter = try Seccomp.compile(try SeccompProfileDocument.parse(Array(json.utf8), source: "p"), capabilities: .empty)
        XCTAssertEqual(try BPFEvaluator(filter).run(nr: 3, arch: auditArchI386), SeccompReturn.killThread)
        XCTAssertEqual(try BPFEvaluator(filter).run(nr: 0), SeccompReturn.allow)
    }

    func testLibseccompErrorNamesTheSyscall() {
        // Argument index 7 cannot come from JSON (the parser stops it); a Swift-built profile reaches
        // libseccomp, which refuses it.
        let document = SeccompProfileDocument(defaultAction: .errno, syscalls: [
            SeccompSyscallRule(names: ["clone"], action: .allow, args: [SeccompArgument(index: 7, value: 0, op: .equal)]),
        ])
        let error = thrownError { () throws(SeccompError) in try Seccomp.compile(document, capabilities: .empty) }
        XCTAssertEqual(error?.description, "seccomp rule for clone: EINVAL")
        XCTAssertEqual(error?.kind, .library(operation: "seccomp rule for clone", errno: .invalidArgument))
    }

    func testFilterLongerThanTheKernelAcceptsIsRefused() {
        let document = SeccompProfileDocument(defaultAction: .errno, syscalls: (0..<1500).map {
            SeccompSyscallRule(names: ["personality"], action: .allow, args: [
                SeccompArgument(index: 0, value: UInt64($0) << 33 | UInt64($0), op: .equal),
            ])
        })
        let error = thrownError { () throws(SeccompError) in try Seccomp.compile(document, capabilities: .empty, source: "big.json") }
        guard case .tooLong(let count)? = error?.kind else { return XCTFail("\(String(describing: error))") }
        XCTAssertGreaterThan(count, SeccompFilter.maximumInstructions)
        XCTAssertEqual(
            error?.description,
            "seccomp profile big.json: compiled filter has \(count) instructions, more than the kernel's limit of 4096")
    }

    func testKernelVersions() {
        XCTAssertEqual(SeccompKernelVersion(parsing: "4.8"), SeccompKernelVersion(4, 8))
        XCTAssertNil(SeccompKernelVersion(parsing: "4"))
        XCTAssertNil(SeccompKernelVersion(parsing: "4.8.1"))
        XCTAssertNil(SeccompKernelVersion(parsing: "0.0"))
        XCTAssertNil(SeccompKernelVersion(parsing: "a.b"))
        XCTAssertEqual(SeccompKernelVersion(release: "6.18.44-fc-v657"), SeccompKernelVersion(6, 18))
        XCTAssertEqual(SeccompKernelVersion(release: "3.12-rc5"), SeccompKernelVersion(3, 12))
        XCTAssertEqual(SeccompKernelVersion(release: "3.12"), SeccompKernelVersion(3, 12))
        XCTAssertNil(SeccompKernelVersion(release: "6"))
        XCTAssertTrue(SeccompKernelVersion(4, 8) < SeccompKernelVersion(4, 10))
        XCTAssertTrue(SeccompKernelVersion(4, 20) < SeccompKernelVersion(5, 0))
        XCTAssertGreaterThanOrEqual(SeccompKernelVersion.running!, SeccompKernelVersion(5, 0))
    }
}
