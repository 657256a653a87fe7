/// A compiled seccomp filter: the classic BPF program the child hands to
/// `seccomp(SECCOMP_SET_MODE_FILTER, …)` (or `prctl(PR_SET_SECCOMP, …)`) as a `struct sock_fprog`.
public struct SeccompFilter: Equatable, Sendable {
    /// An array of `struct sock_filter` (`u16 code; u8 jt; u8 jf; u32 k`), 8 bytes each, in host
    /// byte order, exactly as `seccomp_export_bpf` writes it.
    public let bpf: [UInt8]

    public init(bpf: [UInt8]) {
        self.bpf = bpf
    }

    /// The number of BPF instructions (`sock_fprog.len`).
    public var instructionCount: Int { bpf.count / 8 }

    /// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
    public static let maximumInstructions = 4096

    /// The program as instructions.
    public var instructions: [BPFInstruction] {
        stride(from: 0, to: bpf.count - bpf.count % 8, by: 8).map { offset in
            BPFInstruction(bytes: bpf[offset..<(offset + 8)])
        }
    }
}

/// One `struct sock_filter`.
public struct BPFInstruction: Equatable, Sendable, CustomStringConvertible {
    public var code: UInt16
    public var jt: UInt8
    public var jf: UInt8
    public var k: UInt32

    public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32) {
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k
    }

    /// Decodes 8 bytes in host byte order.
    init(bytes: ArraySlice<UInt8>) {
        let raw = Array(bytes)
        (code, jt, jf, k) = raw.withUnsafeBytes { buffer in
            (buffer.loadUnaligned(fromByteOffset: 0, as: UInt16.self), buffer[2], buffer[3],
             buffer.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        }
    }

    /// The 8 bytes of the instruction in host byte order.
    var bytes: [UInt8] {
        withUnsafeBytes(of: code) { Array($0) } + [jt, jf] + withUnsafeBytes(of: k) { Array($0) }
    }

    // Opcodes (linux/filter.h) used by seccomp programs.
    static let loadWordAbsolute: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    static let jumpEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    static let jumpGreater: UInt16 = 0x25  // BPF_JMP | BPF_JGT | BPF_K
    static let jumpSet: UInt16 = 0x45  // BPF_JMP | BPF_JSET | BPF_K
    static let returnConstant: UInt16 = 0x06  // BPF_RET | BPF_K

    public var description: String {
        func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
        switch code {
        case Self.loadWordAbsolute: return "ld [\(k)]"
        case Self.jumpEqual: return "jeq #\(hex(k)), \(jt), \(jf)"
        case Self.jumpGreater: return "jgt #\(hex(k)), \(jt), \(jf)"
        case Self.jumpSet: return "jset #\(hex(k)), \(jt), \(jf)"
        case Self.returnConstant: return "ret #\(hex(k))"
        default: return "op 0x\(String(code, radix: 16)) \(jt) \(jf) \(hex(k))"
        }
    }
}
