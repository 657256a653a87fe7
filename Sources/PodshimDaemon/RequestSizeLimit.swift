import GRPCCore
import SwiftProtobuf

/// Refuses a request message larger than ``limit`` with RESOURCE_EXHAUSTED, the status a gRPC
/// client expects for an oversize message.
///
/// The transport has a limit of its own (``hardLimit``, which bounds what one stream can make the
/// daemon buffer), but grpc-swift-nio-transport answers a message over it by resetting the
/// stream, which clients see as CANCELLED. So the transport takes somewhat more than the limit
/// podshim means, and this interceptor gives the right answer between the two: a decoded message
/// is measured (its encoded size, unknown fields included) before any handler sees it.
struct RequestSizeLimit: ServerInterceptor {
    /// Requests podshim serves: 2 MiB is far above the largest CRI request (CreateContainer with
    /// its env, mounts and labels).
    static let limit = 2 << 20
    /// What the transport buffers for one message at most; beyond it the stream is reset. With
    /// 256 streams a connection, 4 MiB bounds what one connection can make the daemon hold.
    static let hardLimit = 4 << 20

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var request = request
        request.messages = RPCAsyncSequence(wrapping: Checked(base: request.messages, method: context.descriptor.fullyQualifiedMethod))
        return try await next(request, context)
    }

    static func check(_ message: some Sendable, method: String) throws(RPCError) {
        guard let message = message as? any SwiftProtobuf.Message else { return }
        // Encoding cannot fail for a message that was just decoded; an unmeasurable one passes.
        let size = (try? message.serializedBytes() as [UInt8])?.count ?? 0 // see above
        if size > limit {
            throw RPCError(code: .resourceExhausted,
                           message: "\(method): request of \(size) bytes is over the limit of \(limit) bytes")
        }
    }

    /// The request stream, each message measured as it is read.
    struct Checked<Element: Sendable>: AsyncSequence, Sendable {
        let base: RPCAsyncSequence<Element, any Error>
        let method: String

        struct AsyncIterator: AsyncIteratorProtocol {
            var base: RPCAsyncSequence<Element, any Error>.AsyncIterator
            let method: String

            mutating func next() async throws -> Element? {
                guard let message = try await base.next() else { return nil }
                try RequestSizeLimit.check(message, method: method)
                return message
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), method: method) }
    }
}
