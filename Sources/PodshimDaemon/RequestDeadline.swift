import Dispatch
import GRPCCore
import PodshimSystem
import Synchronization

/// The daemon's gRPC transport with each RPC's deadline (`grpc-timeout`) kept on
/// ``DeadlineTimer`` instead of by grpc-swift.
///
/// grpc-swift's server runs every RPC that has a deadline next to a task in
/// `Task.sleep(for: timeout)`, cancelled when the RPC ends. On Linux a cancelled `Task.sleep`
/// keeps its task, its stack slab and its Dispatch timer until the deadline it slept for
/// (swiftlang/swift#60441): about 1.6 KB per RPC for the whole of the client's timeout (the
/// kubelet's are minutes), so a burst of RPCs looked like a leak of 8–10 KB per pod lifecycle.
/// Here the header is taken off the request's metadata before grpc-swift reads it, and the
/// deadline is a ``DeadlineTimer`` entry, removed the moment the RPC ends. At the deadline the
/// RPC is cancelled exactly as grpc-swift would (its ``ServerContext/RPCCancellationHandle``).
struct DeadlineTransport<Base: ServerTransport>: ServerTransport {
    typealias Bytes = Base.Bytes

    let base: Base
    let clock: any Timekeeper

    init(wrapping base: Base, clock: any Timekeeper = DeadlineTimer.shared) {
        self.base = base
        self.clock = clock
    }

    func configure(context: GRPCServerContext) { base.configure(context: context) }

    func beginGracefulShutdown() { base.beginGracefulShutdown() }

    func listen(
        streamHandler: @escaping @Sendable (_ stream: RPCStream<Inbound, Outbound>, _ context: ServerContext) async -> Void
    ) async throws {
        try await base.listen { [clock] stream, context in
            let deadline = RequestDeadline(clock: clock, cancellation: context.cancellation)
            var stream = stream
            stream.inbound = RPCAsyncSequence(wrapping: TimeoutTaken(base: stream.inbound, deadline: deadline))
            await streamHandler(stream, context)
            deadline.end()
        }
    }
}

/// A request's parts, with `grpc-timeout` taken out of its metadata and armed on its deadline.
struct TimeoutTaken<Bytes: GRPCContiguousBytes & Sendable>: AsyncSequence, Sendable {
    typealias Element = RPCRequestPart<Bytes>
    typealias Parts = RPCAsyncSequence<RPCRequestPart<Bytes>, any Error>
    let base: Parts
    let deadline: RequestDeadline

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Parts.AsyncIterator
        let deadline: RequestDeadline

        mutating func next() async throws -> Element? {
            guard let part = try await base.next() else { return nil }
            guard case .metadata(var metadata) = part else { return part }
            let values = Array(metadata[stringValues: RequestDeadline.header])
            guard !values.isEmpty else { return part }
            metadata.removeAllValues(forKey: RequestDeadline.header)
            // A malformed value is ignored, as grpc-swift ignores it.
            if let seconds = values.first.flatMap(RequestDeadline.seconds(of:)) { deadline.arm(afterSeconds: seconds) }
            return .metadata(metadata)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), deadline: deadline) }
}

/// One RPC's deadline on a ``Timekeeper``: it cancels the RPC when it passes, and is removed from
/// the clock when the RPC ends first.
final class RequestDeadline: Sendable {
    static let header = "grpc-timeout"

    private struct State {
        var token: TimerToken?
        var ended = false
    }

    private let clock: any Timekeeper
    private let cancellation: ServerContext.RPCCancellationHandle
    private let state = Mutex(State())

    init(clock: any Timekeeper, cancellation: ServerContext.RPCCancellationHandle) {
        self.clock = clock
        self.cancellation = cancellation
    }

    /// Cancels the RPC `seconds` from now (replacing an earlier deadline).
    func arm(afterSeconds seconds: Double) {
        let cancellation = self.cancellation
        // Off the timer thread: the RPC's cancellation handlers run in cancel().
        let token = clock.schedule(at: clock.now().advanced(bySeconds: seconds)) { _ in
            DispatchQueue.global().async { cancellation.cancel() }
        }
        let stale: TimerToken? = state.withLock { state in
            if state.ended { return token } // the RPC ended meanwhile
            defer { state.token = token }
            return state.token
        }
        if let stale { clock.cancel(stale) }
    }

    /// The RPC has ended: its deadline leaves the clock.
    func end() {
        let token: TimerToken? = state.withLock { state in
            state.ended = true
            defer { state.token = nil }
            return state.token
        }
        if let token { clock.cancel(token) }
    }

    /// Seconds of a `grpc-timeout` value (1 to 8 digits and a unit: H, M, S, m, u, n); nil when malformed.
    static func seconds(of value: String) -> Double? {
        guard let unit = value.last, (2...9).contains(value.count),
              value.dropLast().allSatisfy({ $0.isASCII && $0.isNumber }), let amount = Double(value.dropLast()) else { return nil }
        switch unit {
        case "H": return amount * 3600
        case "M": return amount * 60
        case "S": return amount
        case "m": return amount / 1e3
        case "u": return amount / 1e6
        case "n": return amount / 1e9
        default: return nil
        }
    }
}
