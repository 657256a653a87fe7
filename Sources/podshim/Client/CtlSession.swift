import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PodshimCRI
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One connection to `podshim serve`: the two CRI services and the call options every RPC uses.
struct CtlSession {
    typealias Transport = HTTP2ClientTransport.Posix

    let runtime: Runtime_V1_RuntimeService.Client<Transport>
    let images: Runtime_V1_ImageService.Client<Transport>
    /// podshim's own PodService (manifest pods under the daemon's supervision).
    let supervised: Podshim_V1_PodService.Client<Transport>
    /// The deadline, if any, and fail-fast on a connection that cannot be made.
    let options: CallOptions
    let socket: String

    /// Call options with another deadline (exec and stop wait longer than the default).
    func options(deadline: Duration?) -> CallOptions {
        var options = self.options
        options.timeout = deadline
        return options
    }

    /// Connects to `socket`, runs `body`, and closes the connection.
    static func with<Result: Sendable>(
        socket: String, deadline: Duration?, _ body: (CtlSession) async throws -> Result
    ) async throws -> Result {
        try checkSocket(socket)
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { client in
            var options = CallOptions.defaults
            options.timeout = deadline
            options.waitForReady = false
            let session = CtlSession(
                runtime: Runtime_V1_RuntimeService.Client(wrapping: client),
                images: Runtime_V1_ImageService.Client(wrapping: client),
                supervised: Podshim_V1_PodService.Client(wrapping: client),
                options: options, socket: socket)
            return try await body(session)
        }
    }

    /// Fails early, with a clear reason, when `path` plainly cannot be the daemon's socket.
    /// (A socket file nobody listens on is caught by the first RPC, as Unavailable.)
    static func checkSocket(_ path: String) throws(CtlError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == EACCES { throw CtlError.forbidden(socket: path) }
            throw CtlError.unreachable(socket: path, reason: errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw CtlError.unreachable(socket: path, reason: "not a socket")
        }
        guard access(path, W_OK) == 0 else { throw CtlError.forbidden(socket: path) }
    }
}

// MARK: - Lookups several subcommands share

extension CtlSession {
    /// The full id of the pod whose id is `given` or starts with it.
    func resolvePod(_ given: String) async throws -> String {
        if CtlFormat.isFullID(given) { return given }
        let pods = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest(), options: options)
        return try CtlFormat.resolve(given, among: pods.items.map(\.id), kind: "pod")
    }

    /// The full id of the container whose id is `given` or starts with it.
    func resolveContainer(_ given: String) async throws -> String {
        if CtlFormat.isFullID(given) { return given }
        let containers = try await runtime.listContainers(Runtime_V1_ListContainersRequest(), options: options)
        return try CtlFormat.resolve(given, among: containers.containers.map(\.id), kind: "container")
    }

    /// Pod names by id, for tables that show a container's pod.
    func podNames() async throws -> [String: String] {
        let pods = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest(), options: options)
        return Dictionary(pods.items.map { ($0.id, $0.metadata.name) }, uniquingKeysWith: { first, _ in first })
    }
}

// MARK: - JSON output

enum CtlJSON {
    /// A message as indented JSON (the proto3 JSON mapping: lowerCamelCase names, int64 as
    /// strings, fields at their default value left out).
    static func pretty(_ message: some SwiftProtobuf.Message) throws -> String {
        CtlFormat.prettyJSON(try message.jsonString(options: encodingOptions))
    }

    /// A message as one line of JSON.
    static func compact(_ message: some SwiftProtobuf.Message) throws -> String {
        try message.jsonString(options: encodingOptions)
    }

    /// Several messages as an indented JSON array.
    static func prettyArray(_ messages: [some SwiftProtobuf.Message]) throws -> String {
        let elements = try messages.map { try $0.jsonString(options: encodingOptions) }
        return CtlFormat.prettyJSON("[" + elements.joined(separator: ",") + "]")
    }

    private static var encodingOptions: JSONEncodingOptions {
        var options = JSONEncodingOptions()
        options.useDeterministicOrdering = true
        return options
    }
}

extension CtlJSON {
    /// Reads a message written in the protobuf JSON mapping (lowerCamelCase or proto field names)
    /// from `path`, or from stdin when `path` is "-". Unknown fields are an error, so typos show.
    static func read<M: SwiftProtobuf.Message>(_ type: M.Type, from path: String, what: String) throws -> M {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw CtlError.usage("\(path): \(String(cString: strerror(errno)))")
            }
            defer { try? handle.close() } // closing a read-only handle: nothing to lose
            var info = stat()
            if fstat(handle.fileDescriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                throw CtlError.usage("\(path): \(String(cString: strerror(EISDIR)))")
            }
            do {
                data = try handle.readToEnd() ?? Data()
            } catch {
                throw CtlError.usage("\(path): cannot read it: \(error)")
            }
        }
        do {
            return try M(jsonUTF8Data: data)
        } catch JSONDecodingError.unknownField(let field) {
            throw CtlError.usage("\(path): a \(what) has no field \"\(field)\"")
        } catch {
            throw CtlError.usage("\(path): not a \(what) in the protobuf JSON mapping: \(error)")
        }
    }
}

/// Runs one action per id, reporting each failure and going on with the rest.
enum CtlEach {
    /// Throws `ExitCode(1)` at the end if any id failed.
    static func run(
        _ subcommand: String, ids: [String], socket: String, _ action: (String) async throws -> Void
    ) async throws {
        var failed = false
        for id in ids {
            do {
                try await action(id)
            } catch {
                CtlReport.print(subcommand, error, socket: socket)
                failed = true
                if let rpc = error as? RPCError, rpc.code == .unavailable { break }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
