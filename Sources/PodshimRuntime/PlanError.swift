/// A manifest that is valid on its own but cannot run on this host (image missing, no command…).
/// Names the field like a manifest error: `spec.containers[0].image: image "x" not found …`.
public struct PlanError: Error, Equatable, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}
