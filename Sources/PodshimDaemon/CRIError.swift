import GRPCCore
import PodshimSpec

/// The gRPC statuses podshim answers with, as containerd and CRI-O use them: the kubelet reacts
/// to the code (NotFound means "already gone", for instance), people read the message.
enum CRIError {
    static func notFound(_ what: String, _ id: String) -> RPCError {
        RPCError(code: .notFound, message: "\(what) \"\(id)\" not found")
    }

    /// A missing or malformed field, named by its path in the request.
    static func invalidArgument(_ field: String, _ problem: String) -> RPCError {
        RPCError(code: .invalidArgument, message: "\(field): \(problem)")
    }

    static func alreadyExists(_ message: String) -> RPCError {
        RPCError(code: .alreadyExists, message: message)
    }

    /// The object exists but is in the wrong state for the request.
    static func failedPrecondition(_ message: String) -> RPCError {
        RPCError(code: .failedPrecondition, message: message)
    }

    static func deadlineExceeded(_ message: String) -> RPCError {
        RPCError(code: .deadlineExceeded, message: message)
    }

    static func `internal`(_ message: String) -> RPCError {
        RPCError(code: .internalError, message: message)
    }

    static func unimplemented(_ method: String) -> RPCError {
        RPCError(code: .unimplemented, message: "\(method) is not implemented by podshim")
    }

    /// A manifest-style field error from the planner, with its path translated to the request's.
    static func invalid(_ error: ManifestError, prefix: String) -> RPCError {
        invalidArgument(prefix + error.path, error.message)
    }
}

/// Validation of identifiers that arrive over the wire.
enum RequestCheck {
    /// Rejects an empty id, and ids long enough to be abuse rather than a mistake.
    static func id(_ value: String, field: String) throws(RPCError) -> String {
        if value.isEmpty { throw CRIError.invalidArgument(field, "required") }
        if value.utf8.count > 256 { throw CRIError.invalidArgument(field, "longer than 256 bytes") }
        return value
    }
}
