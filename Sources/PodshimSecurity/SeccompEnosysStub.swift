/// A few BPF instructions put in front of a compiled profile so that syscalls newer than any the
/// profile names fail with ENOSYS rather than the default EPERM — runc's patchbpf does the same.
///
/// Why: libc and programs probe new syscalls and fall back on ENOSYS only (glibc's clone3, newer
/// `*at2` calls); EPERM from a deny-by-default profile written before the syscall existed breaks
/// them. The stub applies only to the native architecture (x32 calls on x86_64 are left to the
/// filter) and only when the default action denies; it does not change a syscall the profile
/// mentions, as they are all at or below the last one.
///
/// ```
/// ld  [4]                 ; seccomp_data.arch
/// jeq #ARCH, 0, <filter>
/// ld  [0]                 ; seccomp_data.nr
/// jset #0x40000000, <filter>, 0   (x86_64 only: x32 ABI)
/// jgt #LAST, 0, <filter>
/// ret #ERRNO(ENOSYS)
/// <filter>
/// ```
enum SeccompEnosysStub {
    static let enosys: UInt16 = 38

    static func instructions(
        architecture: SeccompArchitecture, lastSyscall: Int32, defaultAction: SeccompAction,
        defaultErrnoRet: UInt16?
    ) -> [BPFInstruction]? {
        switch defaultAction {
        case .allow, .log, .trace: return nil  // permissive: a new syscall is not denied anyway
        case .errno where defaultErrnoRet == enosys: return nil
        default: break
        }
        guard lastSyscall >= 0 else { return nil }

        let x32 = architecture == .x86_64
        // Instructions after each jump up to the filter's first instruction.
        let afterArchCheck: UInt8 = x32 ? 4 : 3
        var stub: [BPFInstruction] = [
            BPFInstruction(code: BPFInstruction.loadWordAbsolute, k: 4),
            BPFInstruction(code: BPFInstruction.jumpEqual, jt: 0, jf: afterArchCheck, k: architecture.token),
            BPFInstruction(code: BPFInstruction.loadWordAbsolute, k: 0),
        ]
        if x32 {
            stub.append(BPFInstruction(code: BPFInstruction.jumpSet, jt: 2, jf: 0, k: 0x4000_0000))
        }
        stub.append(BPFInstruction(code: BPFInstruction.jumpGreater, jt: 0, jf: 1, k: UInt32(lastSyscall)))
        stub.append(BPFInstruction(
            code: BPFInstruction.returnConstant, k: SeccompAction.errno.actionValue(errnoRet: enosys)))
        return stub
    }
}
