import CSeccomp
import Glibc
import PodshimSystem

/// Turns a ``SeccompProfileDocument`` into a BPF program with libseccomp, in the parent.
///
/// Follows runc (libcontainer/seccomp): only the native architecture; rules whose action equals the
/// default are dropped (libseccomp refuses them); unknown syscall names are skipped; several
/// comparisons on the same argument become one rule each; binary-tree optimisation for long
/// profiles; no_new_privs left to the caller. Then the ENOSYS stub (``SeccompEnosysStub``) is put
/// in front, as runc's patchbpf does.
struct SeccompCompiler {
    var capabilities: CapabilitySet
    /// libseccomp's context starts with the native architecture, and podshim adds no other.
    let architecture: SeccompArchitecture = .native
    /// nil: the running kernel.
    var kernel: SeccompKernelVersion? = SeccompKernelVersion.running
    /// Names the profile in errors.
    var source: String?

    /// The rules that apply to this container: Docker's `includes`/`excludes` evaluated against the
    /// capability set, the architecture and the kernel.
    func applicableRules(of profile: SeccompProfileDocument) -> [SeccompSyscallRule] {
        profile.syscalls.filter { rule in
            if let excludes = rule.excludes {
                if excludes.arches.contains(architecture.goName) { return false }
                if excludes.caps.contains(where: hasCapability) { return false }
                if let minimum = excludes.minKernel, let kernel, kernel >= minimum { return false }
            }
            if let includes = rule.includes {
                if !includes.arches.isEmpty && !includes.arches.contains(architecture.goName) { return false }
                if !includes.caps.allSatisfy(hasCapability) { return false }
                if let minimum = includes.minKernel {
                    guard let kernel, kernel >= minimum else { return false }
                }
            }
            return true
        }
    }

    private func hasCapability(_ name: String) -> Bool {
        guard let number = Capabilities.number(named: name) else { return false }
        return capabilities.contains(number)
    }

    func compile(_ profile: SeccompProfileDocument) throws(SeccompError) -> SeccompFilter {
        let defaultAction = profile.defaultAction.actionValue(errnoRet: profile.defaultErrnoRet)
        let rules = applicableRules(of: profile)

        guard let context = seccomp_init(defaultAction) else {
            throw SeccompError(profile: source, .library(operation: "seccomp init", errno: .invalidArgument))
        }
        defer { seccomp_release(context) }

        // podshim sets no_new_privs itself, before the capabilities are dropped.
        try check("seccomp attribute", seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0))
        // A binary tree of syscalls instead of a list: runc's threshold (libseccomp ≤ 2.5.4 misbehaves
        // with the optimisation and no rules at all).
        if rules.count > 32 {
            try check("seccomp attribute", seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2))
        }

        var lastSyscall: Int32 = -1
        for rule in rules {
            let numbers = rule.names.map { ($0, architecture.syscallNumber($0)) }
            for case let (_, number?) in numbers { lastSyscall = max(lastSyscall, number) }
            let action = rule.action.actionValue(errnoRet: rule.errnoRet)
            if action == defaultAction { continue }
            for case let (name, number?) in numbers {
                try add(name: name, number: number, action: action, args: rule.args, to: context)
            }
        }

        var program = try export(context)
        if let stub = SeccompEnosysStub.instructions(
            architecture: architecture, lastSyscall: lastSyscall, defaultAction: profile.defaultAction,
            defaultErrnoRet: profile.defaultErrnoRet)
        {
            program = stub.flatMap(\.bytes) + program
        }
        let filter = SeccompFilter(bpf: program)
        guard filter.instructionCount <= SeccompFilter.maximumInstructions else {
            throw SeccompError(profile: source, .tooLong(instructions: filter.instructionCount))
        }
        return filter
    }

    private func add(
        name: String, number: Int32, action: UInt32, args: [SeccompArgument], to context: scmp_filter_ctx
    ) throws(SeccompError) {
        let comparisons = args.map {
            scmp_arg_cmp(arg: $0.index, op: $0.op.libseccompValue, datum_a: $0.value, datum_b: $0.valueTwo)
        }
        let operation = "seccomp rule for \(name)"
        // libseccomp cannot AND two comparisons of one argument; runc then adds each comparison as a
        // rule of its own (so any of them matches), and so do we.
        let indexes = args.map(\.index)
        if Set(indexes).count < indexes.count {
            for comparison in comparisons {
                var single = comparison
                try check(operation, seccomp_rule_add_array(context, action, number, 1, &single))
            }
        } else {
            try check(operation, comparisons.withUnsafeBufferPointer {
                seccomp_rule_add_array(context, action, number, UInt32($0.count), $0.baseAddress)
            })
        }
    }

    /// The program libseccomp generates, written to a memfd and read back (libseccomp 2.5.4 cannot
    /// export to memory).
    private func export(_ context: scmp_filter_ctx) throws(SeccompError) -> [UInt8] {
        let fd: Int32
        do {
            fd = try makeMemoryFile("podshim-seccomp")
        } catch {
            throw SeccompError(profile: source, .library(operation: "seccomp export: memfd_create", errno: error))
        }
        defer { close(fd) }
        try check("seccomp export", seccomp_export_bpf(context, fd))
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var offset: off_t = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SeccompError(profile: source, .library(operation: "seccomp export: read", errno: .last))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
            offset += off_t(n)
        }
        guard !bytes.isEmpty, bytes.count % 8 == 0 else {
            throw SeccompError(profile: source, .library(operation: "seccomp export", errno: .ioError))
        }
        return bytes
    }

    /// Throws for a libseccomp `-errno` return.
    private func check(_ operation: String, _ result: Int32) throws(SeccompError) {
        guard result < 0 else { return }
        throw SeccompError(profile: source, .library(operation: operation, errno: Errno(rawValue: -result)))
    }
}

extension SeccompOperator {
    var libseccompValue: scmp_compare {
        switch self {
        case .notEqual: return SCMP_CMP_NE
        case .lessThan: return SCMP_CMP_LT
        case .lessOrEqual: return SCMP_CMP_LE
        case .equal: return SCMP_CMP_EQ
        case .greaterOrEqual: return SCMP_CMP_GE
        case .greaterThan: return SCMP_CMP_GT
        case .maskedEqual: return SCMP_CMP_MASKED_EQ
        }
    }
}

/// `memfd_create(name, MFD_CLOEXEC)`. Glibc has it, but Swift's Glibc module does not declare it
/// (it is behind `_GNU_SOURCE`), so it is looked up by name and called through a C function pointer.
private func makeMemoryFile(_ name: String) throws(Errno) -> Int32 {
    typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, UInt32) -> Int32
    guard let symbol = dlsym(nil, "memfd_create") else { throw Errno.noFunction }  // RTLD_DEFAULT
    let memfdCreate = unsafeBitCast(symbol, to: MemfdCreate.self)
    let cloexec: UInt32 = 0x0001  // MFD_CLOEXEC
    while true {
        let fd = memfdCreate(name, cloexec)
        if fd >= 0 { return fd }
        if errno != EINTR { throw Errno.last }
    }
}
