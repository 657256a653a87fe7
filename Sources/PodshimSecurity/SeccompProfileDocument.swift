/// A seccomp profile in the OCI runtime-spec JSON format, with Docker's extensions (`archMap`,
/// `name`, conditional `includes`/`excludes`), as kubelet `Localhost` profiles and Docker's
/// `default.json` are written. Built by ``SeccompProfileDocument/parse(_:source:)`` from JSON, or in
/// Swift (``RuntimeDefaultProfile``); compiled by ``Seccomp/compile(_:capabilities:)``.
public struct SeccompProfileDocument: Equatable, Sendable {
    /// What happens to a syscall no rule matches.
    public var defaultAction: SeccompAction
    /// The errno of a `SCMP_ACT_ERRNO` default (the value of a `SCMP_ACT_TRACE` one); EPERM if absent.
    public var defaultErrnoRet: UInt16?
    /// `SCMP_ARCH_*` names. Only the native architecture is ever compiled in; the others are accepted
    /// and ignored (podshim does not run foreign-ABI processes).
    public var architectures: [String]
    /// Docker's per-architecture lists; accepted, and likewise only the native one is used.
    public var archMap: [SeccompArchitectureEntry]
    /// OCI `flags` (`SECCOMP_FILTER_FLAG_LOG`, …): kept for the record, not applied — the child loads
    /// the exported program as it is.
    public var flags: [String]
    /// The rules, in order.
    public var syscalls: [SeccompSyscallRule]

    public init(
        defaultAction: SeccompAction, defaultErrnoRet: UInt16? = nil, architectures: [String] = [],
        archMap: [SeccompArchitectureEntry] = [], flags: [String] = [], syscalls: [SeccompSyscallRule]
    ) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.archMap = archMap
        self.flags = flags
        self.syscalls = syscalls
    }
}

/// What a seccomp rule does to a matching syscall.
public enum SeccompAction: String, CaseIterable, Equatable, Sendable {
    case allow = "SCMP_ACT_ALLOW"
    /// Fail with `errnoRet` (EPERM when absent).
    case errno = "SCMP_ACT_ERRNO"
    /// Kill the thread (libseccomp's historical `SCMP_ACT_KILL`).
    case kill = "SCMP_ACT_KILL"
    case killProcess = "SCMP_ACT_KILL_PROCESS"
    case killThread = "SCMP_ACT_KILL_THREAD"
    /// Send SIGSYS.
    case trap = "SCMP_ACT_TRAP"
    /// Allow and log.
    case log = "SCMP_ACT_LOG"
    /// Notify a ptrace tracer with `errnoRet` as the message (EPERM when absent, as runc does).
    case trace = "SCMP_ACT_TRACE"

    /// Whether `errnoRet` means something for this action.
    public var takesValue: Bool { self == .errno || self == .trace }

    /// The kernel's `SECCOMP_RET_*` value (as libseccomp's `SCMP_ACT_*` macros build it).
    public func actionValue(errnoRet: UInt16?) -> UInt32 {
        switch self {
        case .allow: return 0x7FFF_0000
        case .errno: return 0x0005_0000 | UInt32(errnoRet ?? 1)  // EPERM
        case .kill, .killThread: return 0x0000_0000
        case .killProcess: return 0x8000_0000
        case .trap: return 0x0003_0000
        case .log: return 0x7FFC_0000
        case .trace: return 0x7FF0_0000 | UInt32(errnoRet ?? 1)
        }
    }
}

/// How a syscall argument is compared (`SCMP_CMP_*`).
public enum SeccompOperator: String, CaseIterable, Equatable, Sendable {
    case notEqual = "SCMP_CMP_NE"
    case lessThan = "SCMP_CMP_LT"
    case lessOrEqual = "SCMP_CMP_LE"
    case equal = "SCMP_CMP_EQ"
    case greaterOrEqual = "SCMP_CMP_GE"
    case greaterThan = "SCMP_CMP_GT"
    /// `(argument & value) == valueTwo`.
    case maskedEqual = "SCMP_CMP_MASKED_EQ"
}

/// One comparison on one syscall argument.
public struct SeccompArgument: Equatable, Sendable {
    /// The argument, 0…5.
    public var index: UInt32
    /// The operand; the mask for ``SeccompOperator/maskedEqual``.
    public var value: UInt64
    /// The value the masked argument must equal; unused by the other operators.
    public var valueTwo: UInt64
    public var op: SeccompOperator

    public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: SeccompOperator) {
        self.index = index
        self.value = value
        self.valueTwo = valueTwo
        self.op = op
    }
}

/// Docker's rule conditions. `includes`: the rule applies only if every listed capability is in the
/// container's set, the native architecture is listed, and the kernel is at least `minKernel`.
/// `excludes`: the rule is dropped if any listed capability is in the set, or the native
/// architecture is listed (or the kernel is at least `minKernel`).
public struct SeccompRuleCondition: Equatable, Sendable {
    /// Capability names (`CAP_SYS_ADMIN`).
    public var caps: [String]
    /// Go-style architecture names (`amd64`, `arm64`, `x86`, `s390x`).
    public var arches: [String]
    public var minKernel: SeccompKernelVersion?

    public init(caps: [String] = [], arches: [String] = [], minKernel: SeccompKernelVersion? = nil) {
        self.caps = caps
        self.arches = arches
        self.minKernel = minKernel
    }
}

/// One entry of `syscalls`: these names, this action, when the arguments compare so.
public struct SeccompSyscallRule: Equatable, Sendable {
    public var names: [String]
    public var action: SeccompAction
    public var errnoRet: UInt16?
    /// All must hold (several on the same argument: any may, as runc adds them as separate rules).
    public var args: [SeccompArgument]
    public var includes: SeccompRuleCondition?
    public var excludes: SeccompRuleCondition?

    public init(
        names: [String], action: SeccompAction, errnoRet: UInt16? = nil, args: [SeccompArgument] = [],
        includes: SeccompRuleCondition? = nil, excludes: SeccompRuleCondition? = nil
    ) {
        self.names = names
        self.action = action
        self.errnoRet = errnoRet
        self.args = args
        self.includes = includes
        self.excludes = excludes
    }
}

/// Docker's `archMap` entry: an architecture and the sub-architectures that go with it.
public struct SeccompArchitectureEntry: Equatable, Sendable {
    public var architecture: String
    public var subArchitectures: [String]

    public init(architecture: String, subArchitectures: [String] = []) {
        self.architecture = architecture
        self.subArchitectures = subArchitectures
    }
}

/// A kernel version as Docker's `minKernel` writes it: `<kernel>.<major>` (`4.8`); compared with the
/// running kernel ignoring the rest of its release string (`6.18.44-…` is 6.18).
public struct SeccompKernelVersion: Comparable, Equatable, Sendable, CustomStringConvertible {
    public var kernel: UInt32
    public var major: UInt32

    public init(_ kernel: UInt32, _ major: UInt32) {
        self.kernel = kernel
        self.major = major
    }

    /// `"4.8"` → 4.8; nil unless exactly two dot-separated decimal numbers, not both zero.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
              let kernel = UInt32(parts[0]), let major = UInt32(parts[1]), kernel <= 255, major <= 255,
              kernel != 0 || major != 0
        else { return nil }
        self.init(kernel, major)
    }

    /// The leading `<kernel>.<major>` of a release string such as `6.18.44-fc-v657` or `3.12-rc5`.
    public init?(release: String) {
        var numbers: [UInt32] = []
        var current: UInt32? = nil
        for byte in release.utf8 {
            if byte >= 0x30 && byte <= 0x39 {
                let (times, overflow1) = (current ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt32(byte - 0x30))
                if overflow1 || overflow2 { return nil }
                current = sum
            } else {
                guard let value = current else { break }
                numbers.append(value)
                current = nil
                if byte != UInt8(ascii: ".") || numbers.count == 2 { break }
            }
        }
        if let current, numbers.count < 2 { numbers.append(current) }
        guard numbers.count >= 2 else { return nil }
        self.init(numbers[0], numbers[1])
    }

    /// The running kernel's version (uname).
    public static var running: SeccompKernelVersion? {
        guard let release = kernelRelease() else { return nil }
        return SeccompKernelVersion(release: release)
    }

    public static func < (lhs: SeccompKernelVersion, rhs: SeccompKernelVersion) -> Bool {
        (lhs.kernel, lhs.major) < (rhs.kernel, rhs.major)
    }

    public var description: String { "\(kernel).\(major)" }
}
