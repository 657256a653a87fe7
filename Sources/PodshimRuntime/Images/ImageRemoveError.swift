import PodshimSystem

/// Why ``ImageStore/remove(_:)`` could not remove an image. An unknown image is not an error.
public enum ImageRemoveError: Error, Equatable, CustomStringConvertible {
    /// An id prefix that matches several images.
    case ambiguous(reference: String, ids: [String])
    /// Deleting the image's directory failed.
    case system(SystemError)

    public var description: String {
        switch self {
        case .ambiguous(let reference, let ids):
            return "\"\(reference)\" matches several images (\(ids.joined(separator: ", "))); give more of the id"
        case .system(let error):
            return "cannot remove image: \(error.description)"
        }
    }
}
