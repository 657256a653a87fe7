import GRPCCore
import PodshimRuntime
import PodshimSpec
import PodshimSystem

/// The one place that knows gRPC status codes: every ``PodshimError`` a service throws becomes
/// the status below (grpc-swift converts any `RPCErrorConvertible`). containerd and CRI-O answer
/// with the same codes; the kubelet reacts to the code (NotFound means "already gone"), people
/// read the message.
extension PodshimError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .resourceExhausted: .resourceExhausted
        case .permissionDenied: .permissionDenied
        case .unauthenticated: .unauthenticated
        case .deadlineExceeded: .deadlineExceeded
        case .cancelled: .cancelled
        case .unavailable: .unavailable
        case .unimplemented: .unimplemented
        case .internal: .internalError
        }
    }

    public var rpcErrorMessage: String { description }
}

/// Errors of the layers below that reach a service unwrapped get the same mapping through their
/// ``PodshimError`` (never gRPC's UNKNOWN).
extension SystemError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code { podshimError.rpcErrorCode }
    public var rpcErrorMessage: String { podshimError.rpcErrorMessage }
}

extension PodError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code { podshimError.rpcErrorCode }
    public var rpcErrorMessage: String { podshimError.rpcErrorMessage }
}

extension ManifestError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code { podshimError.rpcErrorCode }
    public var rpcErrorMessage: String { podshimError.rpcErrorMessage }
}

/// The errors the CRI services build, by kind; each is a ``PodshimError``.
enum CRIError {
    static func notFound(_ what: String, _ id: String) -> PodshimError {
        PodshimError(.notFound, message: "\(what) \"\(id)\" not found")
    }

    /// A missing or malformed field, named by its path in the request.
    static func invalidArgument(_ field: String, _ problem: String) -> PodshimError {
        PodshimError(.invalidArgument, subject: field, message: problem)
    }

    static func alreadyExists(_ message: String) -> PodshimError {
        PodshimError(.alreadyExists, message: message)
    }

    /// The object exists but is in the wrong state for the request.
    static func failedPrecondition(_ message: String) -> PodshimError {
        PodshimError(.failedPrecondition, message: message)
    }

    static func deadlineExceeded(_ message: String) -> PodshimError {
        PodshimError(.deadlineExceeded, message: message)
    }

    static func `internal`(_ message: String) -> PodshimError {
        PodshimError(.internal, message: message)
    }

    static func unimplemented(_ method: String) -> PodshimError {
        PodshimError(.unimplemented, operation: method, message: "not implemented by podshim")
    }

    /// A manifest-style field error from the planner, with its path translated to the request's.
    static func invalid(_ error: ManifestError, prefix: String) -> PodshimError {
        invalidArgument(prefix + error.path, error.message)
    }
}

/// Validation of identifiers that arrive over the wire.
enum RequestCheck {
    /// The one candidate whose id is `id` or starts with it (as containerd and crictl accept
    /// prefixes); an exact match wins over prefixes. NotFound for none, InvalidArgument naming
    /// `field` when the prefix is ambiguous.
    static func unique<Candidate>(
        _ id: String, in candidates: [Candidate], id idOf: (Candidate) -> String, kind: String, kinds: String,
        field: String
    ) throws(PodshimError) -> Candidate {
        if let exact = candidates.first(where: { idOf($0) == id }) { return exact }
        let matches = candidates.filter { idOf($0).hasPrefix(id) }
        guard matches.count == 1 else {
            if matches.count > 1 { throw CRIError.invalidArgument(field, "\"\(id)\" matches \(matches.count) \(kinds)") }
            throw CRIError.notFound(kind, id)
        }
        return matches[0]
    }

    /// Rejects an empty id, and ids long enough to be abuse rather than a mistake.
    static func id(_ value: String, field: String) throws(PodshimError) -> String {
        if value.isEmpty { throw CRIError.invalidArgument(field, "required") }
        if value.utf8.count > 256 { throw CRIError.invalidArgument(field, "longer than 256 bytes") }
        return value
    }
}
