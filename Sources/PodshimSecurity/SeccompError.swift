import PodshimSystem

/// A seccomp profile that cannot be read, parsed or compiled.
///
/// Messages name the file and the JSON location, as the manifest errors do:
/// - `seccomp profile /x/p.json: cannot read: ENOENT`
/// - `seccomp profile /x/p.json: not valid JSON (unexpected end of input at line 3, column 1)`
/// - `seccomp profile /x/p.json: syscalls[3].action: unknown action "SCMP_ACT_FOO"`
/// - `seccomp rule for clone: EINVAL` (libseccomp refused a rule; such errors name the syscall)
public struct SeccompError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The profile file could not be read.
        case unreadable(Errno)
        /// The file is not JSON; the parser's explanation, with line and column.
        case invalidJSON(String)
        /// The JSON is not a valid profile: where (`syscalls[3].action`; empty for the document
        /// itself) and what is wrong.
        case invalidProfile(location: String, message: String)
        /// libseccomp returned `-errno` from an operation (`seccomp rule for clone`, `seccomp export`).
        case library(operation: String, errno: Errno)
        /// The compiled program is longer than the kernel accepts (`BPF_MAXINSNS`, 4096).
        case tooLong(instructions: Int)
    }

    /// The profile's file, or a label (`RuntimeDefault`); nil when not known.
    public var profile: String?
    public var kind: Kind

    public init(profile: String?, _ kind: Kind) {
        self.profile = profile
        self.kind = kind
    }

    public var description: String {
        let prefix = profile.map { "seccomp profile \($0): " } ?? "seccomp profile: "
        switch kind {
        case .unreadable(let errno):
            return prefix + "cannot read: \(errno.symbolicName)"
        case .invalidJSON(let detail):
            return prefix + "not valid JSON (\(detail))"
        case .invalidProfile(let location, let message):
            return prefix + (location.isEmpty ? message : "\(location): \(message)")
        case .library(let operation, let errno):
            return "\(operation): \(errno.symbolicName)"
        case .tooLong(let instructions):
            return prefix + "compiled filter has \(instructions) instructions, more than the kernel's limit of \(SeccompFilter.maximumInstructions)"
        }
    }
}
