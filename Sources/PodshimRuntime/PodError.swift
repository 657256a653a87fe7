import PodshimSpec
import PodshimSystem

/// A failure while running a pod, with the object it concerns first:
/// `container client: execve nope: ENOENT`, `volume shared: mkdir /var/lib/…: EACCES`.
public struct PodError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `sandbox`, `container client`, `volume shared`, `pod`.
    public var subject: String
    /// The underlying error, already formatted with its operation, path and errno.
    public var reason: String

    public init(_ subject: String, _ reason: any Error) {
        self.subject = subject
        self.reason = String(describing: reason)
    }

    public init(_ subject: String, message: String) {
        self.subject = subject
        self.reason = message
    }

    public var description: String { "\(subject): \(reason)" }
}

extension PodError: PodshimErrorConvertible {
    public var podshimError: PodshimError { PodshimError(.internal, subject: subject, message: reason) }
}

extension ManifestError: PodshimErrorConvertible {
    /// A manifest field that is wrong: the field is the subject.
    public var podshimError: PodshimError { PodshimError(.invalidArgument, subject: path, message: message) }
}
