/// Why a Pod manifest was rejected, by the parser or because it cannot run on this host
/// (an image that is not in the store, a container without a command).
///
/// Every error names the field it is about, as a path from the top of the manifest
/// (`spec.containers[1].command`), so a user can find the offending line. Errors about the
/// manifest as a whole (unreadable file, YAML syntax, empty document) use the path `manifest`.
public struct ManifestError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The field the error is about, such as `spec.containers[1].command`, or `manifest`.
    public var path: String
    /// What is wrong with the field, such as `must be a list of strings`.
    public var message: String

    /// Creates an error about the field at `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`, as shown to the user.
    public var description: String { "\(path): \(message)" }
}
