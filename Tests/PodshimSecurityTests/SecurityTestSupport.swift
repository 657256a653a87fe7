import Foundation
import Glibc
import PodshimSecurity
import PodshimSystem
import XCTest

/// A fresh directory under /tmp; removed with its contents by `remove()`.
final class ScratchDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/podshim-sec-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw SystemError("mkdtemp", path: "/tmp", errno: .last) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `contents` to `name` in the directory and returns its path.
    func write(_ name: String, _ contents: String) throws -> String {
        let full = path + "/" + name
        try Data(contents.utf8).write(to: URL(fileURLWithPath: full))
        return full
    }
}

/// x86_64 syscall numbers the tests use.
enum SyscallNumber {
    static let read: Int32 = 0
    static let write: Int32 = 1
    static let socket: Int32 = 41
    static let clone: Int32 = 56
    static let personality: Int32 = 135
    static let chroot: Int32 = 161
    static let mount: Int32 = 165
    static let reboot: Int32 = 169
    static let initModule: Int32 = 175
    static let kexecLoad: Int32 = 246
    static let unshare: Int32 = 272
    static let clone3: Int32 = 435
    static let mseal: Int32 = 462
    static let openTreeAttr: Int32 = 467
}

/// The kernel's seccomp return values the tests expect.
enum SeccompReturn {
    static let allow: UInt32 = 0x7FFF_0000
    static let killThread: UInt32 = 0
    static let killProcess: UInt32 = 0x8000_0000
    static func errno(_ value: UInt32) -> UInt32 { 0x0005_0000 | value }
    static let eperm = errno(1)
    static let enosys = errno(38)
}

let auditArchX86_64: UInt32 = 0xC000_003E
let auditArchI386: UInt32 = 0x4000_0003

/// Runs a classic BPF seccomp program on a `struct seccomp_data`, as the kernel would, so tests can
/// check what a filter decides without loading it into the test process.
struct BPFEvaluator {
    enum Failure: Error, CustomStringConvertible {
        case badInstruction(Int, BPFInstruction)
        case fellOffTheEnd
        case outOfBounds(Int)
        var description: String {
            switch self {
            case let .badInstruction(pc, insn): return "unsupported instruction \(insn) at \(pc)"
            case .fellOffTheEnd: return "program ran past its end"
            case let .outOfBounds(pc): return "load out of seccomp_data at \(pc)"
            }
        }
    }

    let program: [BPFInstruction]

    init(_ filter: SeccompFilter) { program = filter.instructions }

    /// The filter's return value for syscall `nr` with up to six arguments.
    func run(nr: Int32, args: [UInt64] = [], arch: UInt32 = auditArchX86_64) throws -> UInt32 {
        var data = [UInt8](repeating: 0, count: 64)
        func put<T>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value) { for (i, b) in $0.enumerated() { data[offset + i] = b } }
        }
        put(nr, at: 0)
        put(arch, at: 4)
        for (i, arg) in args.prefix(6).enumerated() { put(arg, at: 16 + 8 * i) }

        var a: UInt32 = 0
        var x: UInt32 = 0
        var memory = [UInt32](repeating: 0, count: 16)
        var pc = 0
        while pc < program.count {
            let insn = program[pc]
            let k = insn.k
            pc += 1
            switch insn.code {
            case 0x20:  // ld [k]
                let offset = Int(k)
                guard offset + 4 <= data.count else { throw Failure.outOfBounds(pc - 1) }
                a = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
            case 0x80: a = 64  // ld len
            case 0x00: a = k  // ld #k
            case 0x01: x = k  // ldx #k
            case 0x60: a = memory[Int(k)]  // ld M[k]
            case 0x61: x = memory[Int(k)]  // ldx M[k]
            case 0x02: memory[Int(k)] = a  // st
            case 0x03: memory[Int(k)] = x  // stx
            case 0x07: x = a  // tax
            case 0x87: a = x  // txa
            case 0x04: a = a &+ k
            case 0x14: a = a &- k
            case 0x24: a = a &* k
            case 0x54: a &= k
            case 0x44: a |= k
            case 0xA4: a ^= k
            case 0x64: a = k < 32 ? a << k : 0
            case 0x74: a = k < 32 ? a >> k : 0
            case 0x0C: a = a &+ x
            case 0x5C: a &= x
            case 0x05: pc += Int(k)  // ja
            case 0x15: pc += Int(a == k ? insn.jt : insn.jf)
            case 0x25: pc += Int(a > k ? insn.jt : insn.jf)
            case 0x35: pc += Int(a >= k ? insn.jt : insn.jf)
            case 0x45: pc += Int(a & k != 0 ? insn.jt : insn.jf)
            case 0x1D: pc += Int(a == x ? insn.jt : insn.jf)
            case 0x2D: pc += Int(a > x ? insn.jt : insn.jf)
            case 0x3D: pc += Int(a >= x ? insn.jt : insn.jf)
            case 0x4D: pc += Int(a & x != 0 ? insn.jt : insn.jf)
            case 0x06: return k  // ret #k
            case 0x16: return a  // ret a
            default: throw Failure.badInstruction(pc - 1, insn)
            }
        }
        throw Failure.fellOffTheEnd
    }
}

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
