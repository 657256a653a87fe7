import CSeccomp
import Glibc

/// The architecture the filter is compiled for: always the native one.
struct SeccompArchitecture: Equatable, Sendable {
    /// libseccomp's `SCMP_ARCH_*` value, which for native ABIs is the kernel's `AUDIT_ARCH_*`
    /// (the `seccomp_data.arch` a syscall arrives with).
    let token: UInt32

    static let x86_64 = SeccompArchitecture(token: 0xC000_003E)  // AUDIT_ARCH_X86_64
    static let aarch64 = SeccompArchitecture(token: 0xC000_00B7)  // AUDIT_ARCH_AARCH64

    static var native: SeccompArchitecture { SeccompArchitecture(token: seccomp_arch_native()) }

    /// The name Docker's `includes.arches`/`excludes.arches` use for it (Go's GOARCH spelling,
    /// translated as moby does): `amd64`, `arm64`, `x86`, ….
    var goName: String {
        switch token {
        case 0xC000_003E: return "amd64"
        case 0xC000_00B7: return "arm64"
        case 0x4000_0003: return "x86"
        case 0x4000_0028: return "arm"
        case 0xC000_00F3: return "riscv64"
        case 0x8000_0016: return "s390x"
        case 0xC000_0015: return "ppc64le"
        case 0x8000_0015: return "ppc64"
        case 0xC000_0102: return "loong64"
        default: return "unknown"
        }
    }

    /// The syscall number of `name` on this architecture: libseccomp's table, then
    /// ``newerSyscalls`` for calls added to the kernel after libseccomp 2.5.4. nil when neither
    /// knows it (such names are skipped, as runc does). Negative values are libseccomp's pseudo
    /// numbers for calls this ABI does not have (`socketcall` on x86_64); rules for them are no-ops.
    func syscallNumber(_ name: String) -> Int32? {
        let number = seccomp_syscall_resolve_name_arch(token, name)
        if number != __NR_SCMP_ERROR { return number }
        return Self.newerSyscalls[token]?[name]
    }

    /// Syscalls newer than libseccomp 2.5.4's table (which stops at futex_requeue, 456), with their
    /// numbers from the kernel's syscall tables (arch/x86/entry/syscalls/syscall_64.tbl and the
    /// asm-generic table aarch64 shares). Docker's default profile names several of them.
    static let newerSyscalls: [UInt32: [String: Int32]] = {
        let common: [String: Int32] = [
            "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
            "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
            "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468,
            "file_setattr": 469, "listns": 470,
        ]
        var x86 = common
        x86["uretprobe"] = 335
        x86["uprobe"] = 336
        return [x86_64.token: x86, aarch64.token: common]
    }()
}

/// The running kernel's release string (`uname -r`).
func kernelRelease() -> String? {
    var names = utsname()
    guard uname(&names) == 0 else { return nil }
    return withUnsafeBytes(of: names.release) { buffer in
        String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }
}
