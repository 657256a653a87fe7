import PodshimImages
import PodshimSystem

/// Why a pull from a registry failed. Every case names the reference, host or digest it is about;
/// none ever carries a credential, a token or an Authorization header.
public enum RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The reference does not parse; the detail says why.
    case invalidReference(String, String)
    /// 401 after credentials (or a token) were offered: missing or wrong credentials.
    case unauthorized(host: String, repository: String, detail: String)
    /// 403, or a registry's DENIED: the credentials may not pull this repository.
    case denied(host: String, repository: String, detail: String)
    /// The manifest, tag or repository does not exist (404, MANIFEST_UNKNOWN, NAME_UNKNOWN).
    case notFound(reference: String, detail: String)
    /// 429: the registry's rate limit.
    case tooManyRequests(host: String)
    /// Any other status, after retries where a retry made sense.
    case unexpectedStatus(url: String, status: Int, detail: String)
    /// The connection failed (DNS, refused, TLS, reset), after retries.
    case transport(host: String, detail: String)
    /// A document or blob did not hash to its digest (or its size was not its descriptor's).
    case digestMismatch(what: String, expected: String, actual: String)
    /// A manifest or index podshim will not use; the detail says why (schema 1, ambiguous, too large).
    case unsupportedManifest(reference: String, detail: String)
    /// No image in the index for this platform.
    case noMatchingPlatform(reference: String, wanted: String, available: [String])
    /// The token endpoint's answer could not be used.
    case badTokenResponse(realm: String, detail: String)
    /// No byte arrived for the configured time while the pull was active.
    case stalled(reference: String, seconds: Int)
    /// The configuration (CA file, client certificate, mirror URL) cannot be used.
    case configuration(String)
    /// Storing the image failed (layers, records).
    case store(ImagePullError)

    public var description: String {
        switch self {
        case .invalidReference(let reference, let detail):
            return "image reference \"\(reference)\" is invalid: \(detail)"
        case .unauthorized(let host, let repository, let detail):
            return "pull \(host)/\(repository): unauthorized (the registry refused the credentials, or needs some)"
                + (detail.isEmpty ? "" : ": \(detail)")
        case .denied(let host, let repository, let detail):
            return "pull \(host)/\(repository): access denied" + (detail.isEmpty ? "" : ": \(detail)")
        case .notFound(let reference, let detail):
            return "\(reference): not found" + (detail.isEmpty ? "" : ": \(detail)")
        case .tooManyRequests(let host):
            return "\(host) answered 429 Too Many Requests (its pull rate limit); try again later"
        case .unexpectedStatus(let url, let status, let detail):
            return "GET \(url): HTTP \(status)" + (detail.isEmpty ? "" : ": \(detail)")
        case .transport(let host, let detail):
            return "cannot reach \(host): \(detail)"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what) is corrupt: expected \(expected), got \(actual)"
        case .unsupportedManifest(let reference, let detail):
            return "\(reference): \(detail)"
        case .noMatchingPlatform(let reference, let wanted, let available):
            return "\(reference) has no image for \(wanted) (it has: \(available.isEmpty ? "nothing" : available.joined(separator: ", ")))"
        case .badTokenResponse(let realm, let detail):
            return "token from \(realm): \(detail)"
        case .stalled(let reference, let seconds):
            return "pull \(reference) made no progress for \(seconds) s and was cancelled"
        case .configuration(let detail):
            return "registry configuration: \(detail)"
        case .store(let error):
            return error.description
        }
    }

    /// The code a client sees (ErrorMapping turns it into a gRPC status).
    public var podshimError: PodshimError {
        let code: PodshimError.Code
        switch self {
        case .invalidReference: code = .invalidArgument
        case .unauthorized: code = .unauthenticated
        case .denied: code = .permissionDenied
        case .notFound, .noMatchingPlatform: code = .notFound
        case .tooManyRequests: code = .resourceExhausted
        case .transport, .stalled: code = .unavailable
        case .unexpectedStatus(_, let status, _): code = status >= 500 ? .unavailable : .internal
        case .digestMismatch, .unsupportedManifest, .badTokenResponse: code = .failedPrecondition
        case .configuration: code = .failedPrecondition
        case .store(let error):
            if case .layer = error { code = .failedPrecondition } else { code = .internal }
        }
        return PodshimError(code, operation: "pull", message: description)
    }

    /// Whether trying again may help (network trouble, 5xx, 429).
    var isTransient: Bool {
        switch self {
        case .transport, .tooManyRequests: return true
        case .unexpectedStatus(_, let status, _): return status >= 500 || status == 408
        default: return false
        }
    }
}
