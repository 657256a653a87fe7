import PodshimSecurity
import XCTest

/// What the RuntimeDefault filter decides, checked by running the BPF in ``BPFEvaluator`` (never by
/// loading it into the test process).
final class RuntimeDefaultProfileTests: XCTestCase {
    var withDefaults: SeccompFilter!
    var withSysAdmin: SeccompFilter!

    override func setUpWithError() throws {
        withDefaults = try Seccomp.runtimeDefault(capabilities: Capabilities.defaultSet)
        var caps = Capabilities.defaultSet
        caps.insert(Capabilities.number(named: "SYS_ADMIN")!)
        withSysAdmin = try Seccomp.runtimeDefault(capabilities: caps)
    }

    func run(_ filter: SeccompFilter, _ nr: Int32, _ args: [UInt64] = [], arch: UInt32 = auditArchX86_64) throws -> UInt32 {
        try BPFEvaluator(filter).run(nr: nr, args: args, arch: arch)
    }

    func testCompilesToWholeInstructions() {
        XCTAssertFalse(withDefaults.bpf.isEmpty)
        XCTAssertEqual(withDefaults.bpf.count % 8, 0)
        XCTAssertEqual(withDefaults.instructionCount, withDefaults.bpf.count / 8)
        XCTAssertLessThanOrEqual(withDefaults.instructionCount, SeccompFilter.maximumInstructions)
    }

    func testDependsOnCapSysAdmin() {
        XCTAssertNotEqual(withDefaults, withSysAdmin)
        XCTAssertNotEqual(withDefaults.bpf, withSysAdmin.bpf)
    }

    func testIsDeterministic() throws {
        XCTAssertEqual(try Seccomp.runtimeDefault(capabilities: Capabilities.defaultSet), withDefaults)
    }

    func testAllowsOrdinarySyscalls() throws {
        for nr: Int32 in [SyscallNumber.read, SyscallNumber.write, 2 /* open */, 59 /* execve */, 60 /* exit */,
                          231 /* exit_group */, 257 /* openat */, SyscallNumber.mseal, 158 /* arch_prctl */] {
            XCTAssertEqual(try run(withDefaults, nr), SeccompReturn.allow, "syscall \(nr)")
        }
    }

    func testDeniesWithEPERMByDefault() throws {
        for nr in [SyscallNumber.mount, SyscallNumber.unshare, SyscallNumber.kexecLoad, SyscallNumber.reboot,
                   SyscallNumber.initModule, 167 /* swapon */, 250 /* keyctl */, 321 /* bpf */, 298 /* perf_event_open */,
                   323 /* userfaultfd */, 304 /* open_by_handle_at */, 425 /* io_uring_setup */] {
            XCTAssertEqual(try run(withDefaults, nr), SeccompReturn.eperm, "syscall \(nr)")
        }
    }

    func testCapSysAdminUnlocksMountAndNamespaces() throws {
        for nr in [SyscallNumber.mount, SyscallNumber.unshare, 308 /* setns */, 166 /* umount2 */, 155 /* pivot_root */] {
            XCTAssertEqual(try run(withDefaults, nr), SeccompReturn.eperm, "syscall \(nr)")
            XCTAssertEqual(try run(withSysAdmin, nr), SeccompReturn.allow, "syscall \(nr)")
        }
        // Still never: kexec_load, swapon, keyctl.
        XCTAssertEqual(try run(withSysAdmin, SyscallNumber.kexecLoad), SeccompReturn.eperm)
        XCTAssertEqual(try run(withSysAdmin, 167), SeccompReturn.eperm)
        XCTAssertEqual(try run(withSysAdmin, 250), SeccompReturn.eperm)
    }

    func testCloneWithoutNamespaceFlagsOnly() throws {
        let sigchld: UInt64 = 17
        let threadFlags: UInt64 = 0x003D_0F00  // what glibc's pthread_create passes
        XCTAssertEqual(try run(withDefaults, SyscallNumber.clone, [sigchld]), SeccompReturn.allow)
        XCTAssertEqual(try run(withDefaults, SyscallNumber.clone, [threadFlags]), SeccompReturn.allow)
        for flag: UInt64 in [0x0002_0000 /* NEWNS */, 0x0200_0000 /* NEWCGROUP */, 0x0400_0000 /* NEWUTS */,
                             0x0800_0000 /* NEWIPC */, 0x1000_0000 /* NEWUSER */, 0x2000_0000 /* NEWPID */,
                             0x4000_0000 /* NEWNET */] {
            XCTAssertEqual(try run(withDefaults, SyscallNumber.clone, [sigchld | flag]), SeccompReturn.eperm, "flag \(flag)")
            XCTAssertEqual(try run(withSysAdmin, SyscallNumber.clone, [sigchld | flag]), SeccompReturn.allow, "flag \(flag)")
        }
    }

    func testClone3FailsWithENOSYSUnlessCapSysAdmin() throws {
        XCTAssertEqual(try run(withDefaults, SyscallNumber.clone3), SeccompReturn.enosys)
        XCTAssertEqual(try run(withSysAdmin, SyscallNumber.clone3), SeccompReturn.allow)
    }

    func testSocketFamilies() throws {
        for family: UInt64 in [1 /* AF_UNIX */, 2 /* AF_INET */, 10 /* AF_INET6 */, 16 /* AF_NETLINK */, 17 /* AF_PACKET */, 39, 44 /* AF_XDP */] {
            XCTAssertEqual(try run(withDefaults, SyscallNumber.socket, [family, 1, 0]), SeccompReturn.allow, "family \(family)")
        }
        XCTAssertEqual(try run(withDefaults, SyscallNumber.socket, [40 /* AF_VSOCK */, 1, 0]), SeccompReturn.eperm)
        XCTAssertEqual(try run(withDefaults, SyscallNumber.socket, [38 /* AF_ALG */, 5, 0]), SeccompReturn.eperm)
    }

    func testPersonalityOnlyWithSafeValues() throws {
        for persona: UInt64 in [0, 8, 0x20000, 0x20008, 0xFFFF_FFFF] {
            XCTAssertEqual(try run(withDefaults, SyscallNumber.personality, [persona]), SeccompReturn.allow, "persona \(persona)")
        }
        for persona: UInt64 in [0x0040_0000 /* READ_IMPLIES_EXEC */, 0x0004_0000 /* ADDR_NO_RANDOMIZE */, 1] {
            XCTAssertEqual(try run(withDefaults, SyscallNumber.personality, [persona]), SeccompReturn.eperm, "persona \(persona)")
        }
    }

    func testCapabilityGatedCalls() throws {
        func with(_ name: String) throws -> SeccompFilter {
            var caps = Capabilities.defaultSet
            caps.insert(Capabilities.number(named: name)!)
            return try Seccomp.runtimeDefault(capabilities: caps)
        }
        XCTAssertEqual(try run(try with("SYS_BOOT"), SyscallNumber.reboot), SeccompReturn.allow)
        XCTAssertEqual(try run(try with("SYS_MODULE"), SyscallNumber.initModule), SeccompReturn.allow)
        XCTAssertEqual(try run(try with("SYS_MODULE"), SyscallNumber.kexecLoad), SeccompReturn.eperm)
        XCTAssertEqual(try run(try with("SYS_PTRACE"), 312 /* kcmp */), SeccompReturn.allow)
        XCTAssertEqual(try run(withDefaults, 312), SeccompReturn.eperm)
        XCTAssertEqual(try run(try with("DAC_READ_SEARCH"), 304 /* open_by_handle_at */), SeccompReturn.allow)
        // chroot needs CAP_SYS_CHROOT, which the default set has; without it, EPERM.
        XCTAssertEqual(try run(withDefaults, SyscallNumber.chroot), SeccompReturn.allow)
        let withoutChroot = try Seccomp.runtimeDefault(capabilities: try Capabilities.resolve(add: [], drop: ["SYS_CHROOT"]))
        XCTAssertEqual(try run(withoutChroot, SyscallNumber.chroot), SeccompReturn.eperm)
    }

    func testSyscallsNewerThanTheProfileFailWithENOSYS() throws {
        XCTAssertEqual(try run(withDefaults, SyscallNumber.openTreeAttr), SeccompReturn.enosys)
        XCTAssertEqual(try run(withDefaults, 1000), SeccompReturn.enosys)
        // The ENOSYS stub stops at the profile's last syscall: older denied calls keep EPERM.
        XCTAssertEqual(try run(withDefaults, 466 /* removexattrat, allowed */), SeccompReturn.allow)
    }

    func testForeignArchitecturesAreKilled() throws {
        XCTAssertEqual(try run(withDefaults, 3, arch: auditArchI386), SeccompReturn.killThread)
        // x32 system calls (bit 30) on x86_64 are not native either.
        XCTAssertNotEqual(try run(withDefaults, 0x4000_0000 | SyscallNumber.read), SeccompReturn.allow)
    }

    func testProfileIsTheSameModelAsAParsedDocument() {
        let document = RuntimeDefaultProfile.document
        XCTAssertEqual(document.defaultAction, .errno)
        XCTAssertEqual(document.defaultErrnoRet, 1)
        XCTAssertTrue(document.syscalls[0].names.contains("read"))
        XCTAssertFalse(document.syscalls[0].names.contains("mount"))
        XCTAssertEqual(Set(document.syscalls[0].names).count, document.syscalls[0].names.count, "no duplicates")
    }
}
