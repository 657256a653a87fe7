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
    /// The one candidate whose id is `id` or starts with it (as containerd and crictl accept
    /// prefixes); an exact match wins over prefixes. NotFound for none, InvalidArgument naming
    /// `field` when the prefix is ambiguous.
    static func unique<Candidate>(
        _ id: String, in candidates: [Candidate], id idOf: (Candidate) -> String, kind: String, kinds: String,
        field: String
    ) throws(RPCError) -> Candidate {
        if let exact = candidates.first(where: { idOf($0) == id }) { return exact }
        let matches = candidates.filter { idOf($0).hasPrefix(id) }
        guard matches.count == 1 else {
            if matches.count > 1 { throw CRIError.invalidArgument(field, "\"\(id)\" matches \(matches.count) \(kinds)") }
            throw CRIError.notFound(kind, id)
        }
        return matches[0]
    }

    /// Rejects an empty id, and ids long enough to be abuse rather than a mistake.
    static func id(_ value: String, field: String) throws(RPCError) -> String {
        if value.isEmpty { throw CRIError.invalidArgument(field, "required") }
        if value.utf8.count > 256 { throw CRIError.invalidArgument(field, "longer than 256 bytes") }
        return value
    }
}
