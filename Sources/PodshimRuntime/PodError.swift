import PodshimProcess
import PodshimSpec
import PodshimSystem

/// A failure while running a pod, with the object it concerns first:
/// `container client: execve nope: ENOENT`, `volume shared: mkdir /var/lib/…: EACCES`. The cause
/// keeps its code and errno (a full disk stays ENOSPC, RESOURCE_EXHAUSTED, up to the client).
public struct PodError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `sandbox`, `container client`, `volume shared`, `pod`.
    public var subject: String
    /// What went wrong, with its code, operation, path and errno.
    public var cause: PodshimError

    public init(_ subject: String, _ cause: any Error) {
        self.subject = subject
        self.cause = PodshimError.from(cause)
    }

    public init(_ subject: String, message: String, code: PodshimError.Code = .internal) {
        self.subject = subject
        self.cause = PodshimError(code, message: message)
    }

    /// The cause in words (`execve nope: ENOENT`).
    public var reason: String { cause.description }

    public var description: String { "\(subject): \(reason)" }
}

extension PodError: PodshimErrorConvertible {
    /// The cause's code, except that "not found" and "already exists" of a file podshim manages
    /// are podshim's failure, not an answer about the object the client asked for (a kubelet
    /// reads NotFound as "already gone").
    public var podshimError: PodshimError {
        let code: PodshimError.Code = switch cause.code {
        case .notFound, .alreadyExists: .internal
        case let code: code
        }
        return PodshimError(code, subject: subject, errno: cause.errno, message: cause.description)
    }
}

extension ManifestError: PodshimErrorConvertible {
    /// A manifest field that is wrong: the field is the subject.
    public var podshimError: PodshimError { PodshimError(.invalidArgument, subject: path, message: message) }
}

extension SpawnError: PodshimErrorConvertible {
    /// A stage of the child's setup that failed: its errno decides, as for any system call.
    public var podshimError: PodshimError {
        let code: PodshimError.Code = errno == .timedOut ? .deadlineExceeded : SystemError(stage, errno: errno).podshimError.code
        return PodshimError(code, operation: stage, subject: detail, errno: errno)
    }
}
