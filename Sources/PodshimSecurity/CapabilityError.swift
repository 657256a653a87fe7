/// A capability name in a container's `add` or `drop` list that libcap does not know.
///
/// The description is only the problem (`unknown capability "FOO"`); the runtime prefixes the
/// field path it builds from ``list`` and ``index``
/// (`containers[0].securityContext.capabilities.add[2]`).
public struct CapabilityError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `add` or `drop`.
    public var list: String
    /// The position of the name in that list.
    public var index: Int
    /// The name as it was written.
    public var name: String

    public init(list: String, index: Int, name: String) {
        self.list = list
        self.index = index
        self.name = name
    }

    public var description: String { "unknown capability \"\(name)\"" }
}
