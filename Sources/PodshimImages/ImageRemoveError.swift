import PodshimSystem

/// Why ``ImageStore/remove(_:)`` could not remove an image. An unknown image is not an error.
public enum ImageRemoveError: Error, Equatable, CustomStringConvertible {
    /// An id prefix that matches several images.
    case ambiguous(reference: String, ids: [String])
    /// Deleting the image's directory failed.
    case system(SystemError)
    /// Editing the image's references failed.
    case pull(ImagePullError)

    public var description: String {
        switch self {
        case .ambiguous(let reference, let ids):
            return "\"\(reference)\" matches several images (\(ids.joined(separator: ", "))); give more of the id"
        case .system(let error):
            return "cannot remove image: \(error.description)"
        case .pull(let error):
            return "cannot remove the reference: \(error.description)"
        }
    }
}
