/// podshim's error: a closed code (what the caller can do about it; mapped one-to-one to a gRPC
/// status code in PodshimDaemon's `ErrorMapping.swift`, the only place that knows gRPC), the
/// operation, its subject (a path, an id, a request field) and the errno when a system call failed.
///
/// `description` reads `operation subject: message`, e.g. `mount /run/x: EPERM`,
/// `config.linux.resources.memory_limit_in_bytes: must not be negative`.
public struct PodshimError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the caller can do about it.
    public enum Code: String, Sendable, CaseIterable {
        /// The request is wrong (a field names the problem): do not retry it as is.
        case invalidArgument
        /// The object does not exist (or no longer does).
        case notFound
        /// It exists already.
        case alreadyExists
        /// The object exists but is in the wrong state, or the host cannot do it.
        case failedPrecondition
        /// A limit was reached (sizes, counts, space).
        case resourceExhausted
        /// The caller may not do this.
        case permissionDenied
        /// Credentials are missing or wrong (a registry said 401).
        case unauthenticated
        /// It did not finish in time.
        case deadlineExceeded
        /// The caller went away or asked to stop.
        case cancelled
        /// Try again later (the daemon is starting or stopping).
        case unavailable
        /// podshim does not do this.
        case unimplemented
        /// podshim or the host failed.
        case `internal`
    }

    public var code: Code
    /// What was attempted (`mount tmpfs`, `RunPodSandbox`, `pull`); may be empty when the message
    /// says everything.
    public var operation: String
    /// What it was attempted on: a path, an id, a request field.
    public var subject: String?
    /// The errno, when a system call failed.
    public var errno: Errno?
    /// The problem in words; the errno's name when nil.
    public var message: String?

    public init(_ code: Code, operation: String = "", subject: String? = nil, errno: Errno? = nil, message: String? = nil) {
        self.code = code
        self.operation = operation
        self.subject = subject
        self.errno = errno
        self.message = message
    }

    public var description: String {
        let head = [operation, subject ?? ""].filter { !$0.isEmpty }.joined(separator: " ")
        let detail = message ?? errno.map(\.symbolicName) ?? code.rawValue
        return head.isEmpty ? detail : "\(head): \(detail)"
    }
}

extension PodshimError {
    /// `error` as a ``PodshimError``: itself, what a layer's error says it is, or an internal error
    /// with its description.
    public static func from(_ error: any Error) -> PodshimError {
        if let error = error as? PodshimError { return error }
        if let error = error as? any PodshimErrorConvertible { return error.podshimError }
        return PodshimError(.internal, message: String(describing: error))
    }
}

/// An error of a layer below (a failed system call, a manifest field, a spawn stage) that knows
/// which ``PodshimError`` it is.
public protocol PodshimErrorConvertible: Error {
    var podshimError: PodshimError { get }
}

extension SystemError: PodshimErrorConvertible {
    public var podshimError: PodshimError {
        let code: PodshimError.Code = switch errno {
        case .noSuchFileOrDirectory, .noSuchProcess: .notFound
        case .fileExists: .alreadyExists
        case .permissionDenied, .notPermitted: .permissionDenied
        case .noSpace, .tooManyOpenFiles, .noMemory, .diskQuotaExceeded: .resourceExhausted
        case .timedOut: .deadlineExceeded
        default: .internal
        }
        return PodshimError(code, operation: operation, subject: path, errno: errno)
    }
}
